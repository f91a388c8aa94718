"""Fixtures of the query bus tests: accounts and a controllable clock (tasks run eagerly: tests/conftest.py)."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from cqrs_core.bus import command_bus
from cqrs_core.commands import Actor
from cqrs_core.queries import query_bus
from tests.bus_app.commands import Deposit, OpenAccount

ALICE, BOB, STAFF = Actor(user_id=1), Actor(user_id=2), Actor(user_id=3, is_staff=True)
BALANCES = "bus_app.balances"


class Clock:
    """A clock for the query bus that moves only when told to."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(query_bus, "clock", fake)
    return fake


def open_account(owner: Actor = ALICE) -> uuid.UUID:
    account = uuid.uuid4()
    command_bus.dispatch(OpenAccount(account_id=account), actor=owner)
    return account


def deposit(account: uuid.UUID, amount: str, actor: Actor = ALICE) -> int:
    """Deposit and return the event's position."""
    position = command_bus.dispatch(Deposit(account_id=account, amount=Decimal(amount)), actor=actor).position
    assert position is not None
    return position
