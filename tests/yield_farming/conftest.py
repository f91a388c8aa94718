"""Fixtures of the yield farming tests: the portfolio tests' users and market, a listed catalogue, fault knobs."""
from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from cqrs_core.bus import command_bus, load
from cqrs_core.commands import Actor, Command, handler_for
from cqrs_core.models import StoredEvent
from portfolio.commands import DepositFunds
from portfolio.state import Portfolio, portfolio_stream
from tests.portfolio.conftest import (  # noqa: F401  (fixtures)
    _fresh_throttles, alice, api, bob, bob_api, fixed_market, operator, staff_api,
)
from tests.api.conftest import anon_api  # noqa: F401  (fixture)
from yield_farming import sagas
from yield_farming.commands import ExecuteYieldStrategy

from .support import PROTOCOLS

Fault = Callable[[Command], None]


@pytest.fixture
def catalogue() -> None:
    """The four test protocols, listed through the bus."""
    for command in PROTOCOLS:
        command_bus.dispatch(command)


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], list[BaseException]]:
    """``faults[(command class name, "before" | "after")]``: errors the saga's next such command raises."""
    knobs: dict[tuple[str, str], list[BaseException]] = {}
    real = sagas.send

    def send(command: Command, ctx: Any, suffix: str = "") -> dict[str, Any]:
        _raise(knobs, type(command).__name__, "before")
        result = real(command, ctx, suffix)
        _raise(knobs, type(command).__name__, "after")
        return result

    monkeypatch.setattr(sagas, "send", send)
    return knobs


def _raise(knobs: dict[tuple[str, str], list[BaseException]], name: str, moment: str) -> None:
    queue = knobs.get((name, moment))
    if queue:
        raise queue.pop(0)


def deposit(user_id: int, amount: str = "10000") -> None:
    command_bus.dispatch(DepositFunds(user_id=user_id, amount=Decimal(amount)), actor=Actor(user_id=user_id))


def request(user_id: int, amount: str = "5000", protocols: tuple[str, ...] = ("any",),
            tolerance: str = "moderate") -> uuid.UUID:
    """Request a strategy as the user; with eager Celery the saga runs to its end after the commit."""
    strategy_id = uuid.uuid4()
    command_bus.dispatch(ExecuteYieldStrategy(user_id=user_id, strategy_id=strategy_id, protocols=protocols,
                                              amount=Decimal(amount), risk_tolerance=tolerance),
                         actor=Actor(user_id=user_id))
    return strategy_id


def portfolio_state(user_id: int) -> Portfolio:
    state, _ = load(handler_for(DepositFunds), portfolio_stream(user_id))
    assert state is not None
    return state


def total_cash(user_id: int) -> Decimal:
    """cash + reserved + yield principal, folded from the stream."""
    state = portfolio_state(user_id)
    return state.cash + state.reserved + state.yield_principal


def portfolio_events(user_id: int) -> Counter:
    """How many events of each type the user's portfolio stream holds."""
    rows = StoredEvent.objects.filter(stream_id=portfolio_stream(user_id)).values_list("event_type", flat=True)
    return Counter(t.split(".", 1)[1] for t in rows)


def saga_kinds(saga_id: uuid.UUID) -> list[tuple[str, str]]:
    rows = StoredEvent.objects.filter(stream_id=f"saga-{saga_id}").order_by("stream_version")
    return [(r.event_type.split(".", 1)[1], r.data.get("step", "")) for r in rows]


@pytest.fixture
def no_sagas(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Requests start no saga (to look at the request alone)."""
    from cqrs_core.sagas import engine

    monkeypatch.setattr(engine, "start_saga", lambda *a, **k: None)
    yield


def projected(names: tuple[str, ...] = ("portfolio.portfolios", "yield_farming.protocols",
                                        "yield_farming.strategies")) -> None:
    """Bring the read models up to the head: a wake-up run may stop at a hole it cannot prove yet (PostgreSQL).

    Transactional tests here also reset the position sequence: a test starting at position 500
    would otherwise see 1..499 as a hole whose proof waits for every transaction on the server.
    """
    import time

    from cqrs_core.projections import caught_up, run_projection
    from cqrs_core.store import head_position

    head = head_position()
    deadline = time.monotonic() + 10
    for name in names:
        while not caught_up(name, head):
            assert time.monotonic() < deadline, f"{name} did not reach {head}"
            run_projection(name)
