"""The batch path: one savepoint per batch, one by one only to isolate a failing event; equal to one by one."""
from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings, strategies as st

from cqrs_core import projections as proj
from cqrs_core.events import Event
from cqrs_core.models import DeadLetter, ProjectionState
from cqrs_core.projections import Status, run_projection
from cqrs_core.store import ANY_VERSION, append, head_position, read_all
from portfolio.events import (
    FundsDeposited, FundsReserved, FundsWithdrawn, PortfolioOpened, ReservationReleased, RiskLimitsSet,
)
from portfolio.models import Portfolio, Position
from trading.events import TradeExecuted
from trading.models import Trade
from yield_farming.events import YieldPositionClosed, YieldPositionOpened

from .conftest import BALANCES, LEDGER, deposit, ledger_counts_per_position, money_positions, open_account

PORTFOLIOS, TRADES = "portfolio.portfolios", "trading.trades"
AT = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)


# --- a poison event inside one batch ------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_poison_event_in_the_middle_of_a_batch_is_the_only_one_dead_lettered(
    no_wakeups: None, poison: set[Decimal],
) -> None:
    account = open_account()
    for amount in ("1", "2", "13.13", "4", "5"):
        deposit(account, amount)
    positions = money_positions()
    bad = positions[2]
    poison.add(Decimal("13.13"))

    ledger = run_projection(LEDGER)  # lenient, batch of 50: the whole history in one batch

    assert ledger.dead_lettered == 1 and ledger.applied == 4
    assert ledger_counts_per_position() == {p: 1 for p in positions if p != bad}, "the others once each"
    assert list(DeadLetter.objects.filter(projection=LEDGER).values_list("position", flat=True)) == [bad]
    assert ProjectionState.objects.get(name=LEDGER).position == head_position()

    balances = run_projection(BALANCES)  # strict: applies what precedes the poison, stops before it

    assert balances.dead_lettered == 1 and balances.status == Status.FAILED
    state = ProjectionState.objects.get(name=BALANCES)
    assert state.position == bad - 1 and state.events_applied == 3  # opened, 1, 2
    assert list(DeadLetter.objects.filter(projection=BALANCES).values_list("position", flat=True)) == [bad]


@pytest.mark.django_db(transaction=True)
def test_a_batch_function_that_fails_falls_back_to_one_by_one_and_keeps_nothing_of_the_failed_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch function wrote rows before it failed: the savepoint must take them back."""
    events = _opened_and_deposits(user_id=71, deposits=3)
    append("portfolio-71", events, ANY_VERSION)
    original = proj.get_projection(PORTFOLIOS)
    calls = Counter()

    def half_done(batch) -> None:
        calls["batch"] += 1
        original.batch(batch)  # every row written...
        raise RuntimeError("the batch function broke after writing")  # ...then the whole try is undone

    monkeypatch.setitem(proj._PROJECTIONS, PORTFOLIOS, dataclasses.replace(original, batch=half_done))
    proj.ensure_states()
    ProjectionState.objects.filter(name=PORTFOLIOS).update(position=head_position() - len(events))

    report = run_projection(PORTFOLIOS)

    assert calls["batch"] == 1 and report.applied == 4 and report.dead_lettered == 0
    assert Portfolio.objects.get(pk=71).cash == Decimal("6"), "each deposit once (1 + 2 + 3)"


def _opened_and_deposits(*, user_id: int, deposits: int) -> list[Event]:
    return [PortfolioOpened(user_id=user_id)] + [
        FundsDeposited(user_id=user_id, amount=Decimal(i)) for i in range(1, deposits + 1)
    ]


# --- batch apply equals one-by-one apply on random histories ----------------------------------------
USERS = st.integers(min_value=1, max_value=4)
AMOUNTS = st.decimals(min_value=Decimal("0.000000000000000001"), max_value=Decimal("50000"), places=18)
ASSETS = st.sampled_from(["BTC", "ETH"])


@st.composite
def trade(draw: st.DrawFn, user_id: int) -> TradeExecuted:
    asset, amount, price = draw(ASSETS), draw(AMOUNTS), draw(AMOUNTS)
    notional = (amount * price).quantize(Decimal("1e-18"))
    return TradeExecuted(
        trade_id=draw(st.sampled_from(TRADE_IDS)), user_id=user_id,
        client_trade_id=draw(st.sampled_from([None, "client-1", "ç-2"])), pair=f"{asset}/USD",
        asset=asset, side=draw(st.sampled_from(["buy", "sell"])), amount=amount, price=price, notional=notional,
        fee=(notional / 1000).quantize(Decimal("1e-18")), realised_pnl=draw(AMOUNTS) - draw(AMOUNTS),
        average_cost=price, market_price=price, strategy_id=draw(st.sampled_from([None, RESERVATION])),
        executed_at=AT + dt.timedelta(microseconds=draw(st.integers(min_value=0, max_value=10**12))),
    )


#: Few trade ids: a repeated one makes ``trading.trades`` fail on that event (a poison).
TRADE_IDS = [uuid.UUID(int=n) for n in range(1, 30)]
RESERVATION = uuid.UUID(int=99)


@st.composite
def portfolio_event(draw: st.DrawFn) -> tuple[int, Event]:
    """Any event of ``portfolio.portfolios``; events of a user not opened yet are poison to the projection."""
    user_id, amount = draw(USERS), draw(AMOUNTS)
    kind = draw(st.sampled_from(["open", "open", "deposit", "withdraw", "limits", "trade", "trade", "trade",
                                 "reserve", "release", "yield_open", "yield_close"]))
    match kind:
        case "open":
            event: Event = PortfolioOpened(user_id=user_id)
        case "deposit":
            event = FundsDeposited(user_id=user_id, amount=amount)
        case "withdraw":
            event = FundsWithdrawn(user_id=user_id, amount=amount)
        case "limits":
            event = RiskLimitsSet(user_id=user_id, max_position_usd=amount, set_by=None)
        case "trade":
            event = draw(trade(user_id))
        case "reserve":
            event = FundsReserved(user_id=user_id, reservation_id=RESERVATION, amount=amount, purpose="yield")
        case "release":
            event = ReservationReleased(user_id=user_id, reservation_id=RESERVATION, amount=amount, reason="done")
        case "yield_open":
            event = YieldPositionOpened(user_id=user_id, position_id=RESERVATION, strategy_id=RESERVATION,
                                        protocol="aave", principal=amount, apy=Decimal("0.05"), opened_at=AT)
        case _:
            event = YieldPositionClosed(user_id=user_id, position_id=RESERVATION, strategy_id=RESERVATION,
                                        protocol="aave", principal=amount, reason="done", closed_at=AT)
    return user_id, event


#: Users 1-3 opened first (user 4 only if the history opens it); then anything, in any order.
HISTORIES = st.lists(portfolio_event(), min_size=1, max_size=40).map(
    lambda events: [(u, PortfolioOpened(user_id=u)) for u in (1, 2, 3)] + events)


def read_model_rows() -> tuple[Counter, ...]:
    return (
        Counter(Portfolio.objects.values_list("user_id", "cash", "realised_pnl", "fees_paid", "max_position_usd",
                                              "reserved", "yield_principal", "version", "position")),
        Counter(Position.objects.values_list("portfolio_id", "asset", "quantity", "average_cost", "realised_pnl")),
        Counter(Trade.objects.values_list(*(f.attname for f in Trade._meta.concrete_fields))),
    )


def _one_by_one(names: tuple[str, ...], after: int) -> tuple[tuple[Counter, ...], dict[str, list[int]]]:
    """The reference: every event through the projection's single-event ``apply``, each in its own savepoint."""
    failed: dict[str, list[int]] = {name: [] for name in names}
    for name in names:
        projection = proj.get_projection(name)
        for recorded in read_all(after, limit=10_000, types=projection.event_types):
            try:
                with transaction.atomic():
                    projection.apply(recorded.event, recorded)
            except Exception:
                failed[name].append(recorded.position)
    return read_model_rows(), failed


@contextmanager
def lenient(names: tuple[str, ...], batch_size: int) -> Iterator[None]:
    """The projections with the given batch size, going on past dead letters, failing on the first try."""
    replaced = {name: dataclasses.replace(proj.get_projection(name), strict=False, batch_size=batch_size,
                                          max_attempts=1) for name in names}
    with mock.patch.dict(proj._PROJECTIONS, replaced):
        yield


def _reset(names: tuple[str, ...], after: int) -> None:
    for name in names:
        proj.get_projection(name).reset()
    DeadLetter.objects.filter(projection__in=names).delete()
    proj.ensure_states()
    ProjectionState.objects.filter(name__in=names).update(position=after, status=Status.RUNNING, gap_upto=None,
                                                          gap_horizon=None)


def drawn_position() -> int:
    """The last position drawn so far, committed or not: where this test's own events start after.

    ``head_position()`` is not enough on PostgreSQL: positions drawn by earlier tests and then
    truncated or rolled back would be a hole under this test's events, and this test's open
    transaction, the oldest running, can never see that hole resolved.
    """
    if connection.vendor != "postgresql":
        return head_position()
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM pg_sequences "  # NULL until the sequence is first used
                       "WHERE sequencename = split_part(pg_get_serial_sequence('cqrs_event', 'position'), '.', 2)")
        (last_value,) = cursor.fetchone()
    return max(head_position(), last_value or 0)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(history=HISTORIES, batch_size=st.integers(min_value=2, max_value=45))
def test_batch_apply_equals_one_by_one_apply_on_random_histories(history: list, batch_size: int) -> None:
    names = (PORTFOLIOS, TRADES)
    after = drawn_position()
    for user_id, event in history:
        append(f"portfolio-{user_id}", [event], ANY_VERSION)
    _reset(names, after)
    expected, failed = _one_by_one(names, after)

    _reset(names, after)
    fallbacks: Counter = Counter()
    one_by_one = proj._apply_one_by_one

    def spy(projection, state, events, cursor, outcome):
        fallbacks[projection.name] += len(events) > 1
        return one_by_one(projection, state, events, cursor, outcome)

    with lenient(names, batch_size), mock.patch.object(proj, "_apply_one_by_one", spy):
        for name in names:
            run_projection(name)

    assert read_model_rows() == expected
    for name in names:
        letters = DeadLetter.objects.filter(projection=name).order_by("position").values_list("position", flat=True)
        assert list(letters) == failed[name], name
        assert ProjectionState.objects.get(name=name).position == head_position()
        if not failed[name]:
            assert fallbacks[name] == 0, f"{name} fell back to one by one with no failing event"


# --- trading.trades copies stored data of the current schema; older data goes through its upcasters -----
@pytest.mark.django_db(transaction=True)
def test_trades_stored_under_an_older_schema_version_are_upcast_before_they_are_copied(
    no_wakeups: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A (made-up) version 0 of ``TradeExecuted`` called the amount ``quantity``: its rows must come out right."""
    from cqrs_core import events as events_module
    from cqrs_core.models import StoredEvent

    def v0_to_v1(data: dict) -> dict:
        data["amount"] = data.pop("quantity")
        return data

    monkeypatch.setitem(events_module._UPCASTERS, (TradeExecuted.event_type, 0), v0_to_v1)
    monkeypatch.setattr(TradeExecuted, "schema_version", 1)
    current = trade_event(uuid.UUID(int=1), "0.5")
    old_data = current.to_data() | {"trade_id": str(uuid.UUID(int=2)), "amount": None}
    old_data["quantity"] = old_data.pop("amount") or "0.25"
    _reset((TRADES,), head_position())
    append("portfolio-5", [current], ANY_VERSION)
    StoredEvent.objects.create(stream_id="portfolio-5", stream_version=2, event_type=TradeExecuted.event_type,
                               schema_version=0, data=old_data, event_id=uuid.uuid4(), recorded_at=AT)

    fell_back = mock.patch.object(proj, "_apply_one_by_one", side_effect=AssertionError("the batch failed"))
    with fell_back:
        assert run_projection(TRADES).applied == 2

    amounts = dict(Trade.objects.values_list("trade_id", "amount"))
    assert amounts == {uuid.UUID(int=1): Decimal("0.5"), uuid.UUID(int=2): Decimal("0.25")}


def trade_event(trade_id: uuid.UUID, amount: str) -> TradeExecuted:
    price = Decimal("100")
    notional = Decimal(amount) * price
    return TradeExecuted(trade_id=trade_id, user_id=5, client_trade_id="c-1", pair="BTC/USD", asset="BTC", side="buy",
                         amount=Decimal(amount), price=price, notional=notional, fee=Decimal("0.05"),
                         realised_pnl=Decimal(0), average_cost=price, market_price=price, executed_at=AT)
