"""Fixtures of the projection tests: deterministic wake-ups, accounts, poison, read-model snapshots."""
from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest

from cqrs_core.bus import command_bus
from cqrs_core.commands import Actor
from cqrs_core.models import StoredEvent
from tests.bus_app.commands import Deposit, OpenAccount, Withdraw
from tests.bus_app.events import FundsDeposited, FundsWithdrawn
from tests.bus_app.models import AccountBalance, AccountOwner, LedgerEntry
from tests.bus_app.projections import POISON_AMOUNTS

USER = Actor(user_id=1)
MONEY_TYPES = (FundsDeposited.event_type, FundsWithdrawn.event_type)
BALANCES, LEDGER, OWNERS = "bus_app.balances", "bus_app.ledger", "bus_app.owners"


@pytest.fixture
def no_wakeups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wake-ups do nothing: only explicit ``run_projection`` calls move async projections."""
    from cqrs_core.tasks import run_projection_task

    monkeypatch.setattr(run_projection_task, "apply_async", lambda *args, **kwargs: None)


@pytest.fixture
def poison() -> Iterator[set[Decimal]]:
    """``POISON_AMOUNTS``, emptied again whatever the test does."""
    try:
        yield POISON_AMOUNTS
    finally:
        POISON_AMOUNTS.clear()


def open_account(owner: Actor = USER) -> uuid.UUID:
    account = uuid.uuid4()
    command_bus.dispatch(OpenAccount(account_id=account), actor=owner)
    return account


def deposit(account: uuid.UUID, amount: str | Decimal, actor: Actor = USER) -> int:
    return command_bus.dispatch(Deposit(account_id=account, amount=Decimal(amount)), actor=actor).position


def withdraw(account: uuid.UUID, amount: str | Decimal, actor: Actor = USER) -> int:
    return command_bus.dispatch(Withdraw(account_id=account, amount=Decimal(amount)), actor=actor).position


def money_positions() -> list[int]:
    return list(StoredEvent.objects.filter(event_type__in=MONEY_TYPES).order_by("position")
                .values_list("position", flat=True))


def balances_rows() -> Counter:
    return Counter(AccountBalance.objects.values_list(
        "account_id", "owner_id", "currency", "balance", "transactions", "position"))


def ledger_rows() -> Counter:
    """LedgerEntry rows without their auto id, as a multiset (a duplicate would show)."""
    return Counter(LedgerEntry.objects.values_list("position", "account_id", "amount"))


def owners_rows() -> Counter:
    return Counter(AccountOwner.objects.values_list("account_id", "owner_id"))


def ledger_counts_per_position() -> Counter:
    return Counter(LedgerEntry.objects.values_list("position", flat=True))
