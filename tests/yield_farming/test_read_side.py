"""Read side: accrued yield, reserved cash in GetPortfolio, replay equals live, and a conservation property."""
from __future__ import annotations

import datetime as dt
import decimal
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cqrs_core.commands import MONEY_CONTEXT, Decision
from cqrs_core.errors import DomainError
from cqrs_core.projections import rebuild
from cqrs_core.queries import query_bus
from portfolio.commands import DepositFunds, WithdrawFunds, deposit_funds, withdraw_funds
from portfolio.models import Portfolio as PortfolioRow
from portfolio.queries import GetPortfolio
from portfolio.state import PORTFOLIO
from tests.conftest import context
from tests.portfolio.support import ExecuteTradeFactory, trade_context
from trading.commands import execute_trade
from trading.events import TradeExecuted
from yield_farming.commands import (
    Allocation, CloseYieldPositions, ExecuteYieldStrategy, OpenYieldPositions, ReleaseReservation,
    close_yield_positions, execute_yield_strategy, open_yield_positions, release_reservation,
)
from yield_farming.models import Protocol, YieldPosition, YieldStrategy
from yield_farming.queries import accrued_yield

from .conftest import deposit, projected, request
from .support import USER, yield_context

OPENED = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(("until", "expected"), [
    (OPENED + dt.timedelta(hours=23, minutes=59), "0.000000000000000000"),  # no whole day yet
    (OPENED + dt.timedelta(days=1), "2.739726027397260274"),  # 10,000 x 10 % / 365
    (OPENED + dt.timedelta(days=365, hours=5), "1000.000000000000000000"),
    (OPENED - dt.timedelta(days=3), "0.000000000000000000"),  # a clock behind the opening accrues nothing
])
def test_accrual_is_simple_interest_by_whole_days_at_the_opening_apy(until: dt.datetime, expected: str) -> None:
    assert format(accrued_yield(Decimal("10000"), Decimal("10"), OPENED, until), "f") == expected


@pytest.mark.django_db(transaction=True, reset_sequences=True)
@pytest.mark.usefixtures("catalogue", "no_sagas")
def test_get_portfolio_shows_reserved_cash_and_counts_it_in_the_total() -> None:
    deposit(5, "10000")
    request(5, "4000")  # no saga runs: the reservation stays
    projected()
    data = query_bus.ask(GetPortfolio(user_id=5)).data
    assert (data["cash"], data["reserved"], data["yield_principal"]) == (Decimal("6000"), Decimal("4000"), 0)
    assert data["total_value"] == Decimal("10000") and data["allocation"]["USD_RESERVED"] == Decimal("40.0000")


@pytest.mark.django_db(transaction=True, reset_sequences=True)
@pytest.mark.usefixtures("catalogue")
def test_rebuilding_the_yield_and_portfolio_projections_gives_the_live_rows(faults) -> None:  # type: ignore[no-untyped-def]
    deposit(5, "20000")
    request(5, "5000")
    faults[("OpenYieldPositions", "after")] = [ValueError("boom")]
    request(5, "6000")  # compensated: positions opened, then closed

    def rows() -> tuple:
        return (list(Protocol.objects.values()), list(YieldStrategy.objects.values()),
                list(YieldPosition.objects.order_by("position_id").values()),
                list(PortfolioRow.objects.values()))

    projected()
    live = rows()
    for name in ("yield_farming.protocols", "yield_farming.strategies", "portfolio.portfolios"):
        rebuild(name)
    assert rows() == live
    assert len(live[2]) == 4 and sum(1 for p in live[2] if p["closed_at"]) == 2


# --- conservation ------------------------------------------------------------------------------
ACTIONS = st.lists(st.tuples(
    st.sampled_from(["deposit", "withdraw", "buy", "sell", "strategy", "open", "release", "close"]),
    st.decimals(min_value=1, max_value=20000, places=2)), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ACTIONS)
def test_cash_reserved_and_principal_change_only_by_deposits_withdrawals_and_trades(actions: list) -> None:
    """Whatever strategies, openings, releases and closings happen, the three buckets sum to the external flows."""
    events: list = []
    external = Decimal(0)
    strategies: list[uuid.UUID] = []
    with decimal.localcontext(MONEY_CONTEXT):
        for kind, amount in actions:
            state = PORTFOLIO.fold(events)
            try:
                new = _decide(kind, amount, state, strategies)
            except DomainError:
                continue
            if not new:
                continue
            events += new
            for event in new:
                external += _external(event)
            after = PORTFOLIO.fold(events)
            assert after is not None
            assert after.cash + after.reserved + after.yield_principal == external
            assert after.cash >= 0 and after.reserved >= 0 and after.yield_principal >= 0
            assert after.reserved == sum(after.reservations.values(), Decimal(0))
            assert after.yield_principal == sum((h.principal for h in after.yield_positions.values()), Decimal(0))


def _decide(kind: str, amount: Decimal, state: object, strategies: list[uuid.UUID]) -> list:
    def run(handler: object, cmd: object, ctx: object = None) -> list:
        decision = handler(state, cmd, ctx or yield_context())  # type: ignore[operator]
        return list(decision.events) if isinstance(decision, Decision) else list(decision)

    last = strategies[-1] if strategies else None
    match kind:
        case "deposit":
            return run(deposit_funds, DepositFunds(user_id=1, amount=amount), context(actor=USER))
        case "withdraw":
            return run(withdraw_funds, WithdrawFunds(user_id=1, amount=amount), context(actor=USER))
        case "buy" | "sell":
            cmd = ExecuteTradeFactory(side=kind, amount=(amount / 50000).quantize(Decimal("1e-6")) or Decimal("1e-6"))
            return run(execute_trade, cmd, trade_context())
        case "strategy":
            strategies.append(uuid.uuid4())
            return run(execute_yield_strategy, ExecuteYieldStrategy(
                user_id=1, strategy_id=strategies[-1], protocols=("any",), amount=amount + 999,
                risk_tolerance="moderate"))
        case "open" if last is not None:
            half = (amount / 2).quantize(Decimal("0.01"))
            return run(open_yield_positions, OpenYieldPositions(user_id=1, strategy_id=last, allocations=(
                Allocation(protocol="safe-a", amount=half), Allocation(protocol="mid-c", amount=half))))
        case "release" if last is not None:
            return run(release_reservation, ReleaseReservation(user_id=1, reservation_id=last, reason="test"))
        case "close" if last is not None:
            return run(close_yield_positions, CloseYieldPositions(user_id=1, strategy_id=last, reason="test"))
    return []


def _external(event: object) -> Decimal:
    """What an event brings in from outside the three buckets (deposits, withdrawals, trades), else 0."""
    from portfolio.events import FundsDeposited, FundsWithdrawn

    match event:
        case FundsDeposited():
            return event.amount
        case FundsWithdrawn():
            return -event.amount
        case TradeExecuted():
            return (-event.notional if event.side == "buy" else event.notional) - event.fee
    return Decimal(0)
