"""Rebalance handlers, given events -> when a command -> then events or an error; no database."""
from __future__ import annotations

import datetime as dt
import decimal
import uuid
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from cqrs_core.commands import MONEY_CONTEXT, CommandContext, Decision
from cqrs_core.events import Event
from portfolio.commands import ExecuteRebalance, RebalancePortfolio, execute_rebalance, rebalance_portfolio
from portfolio.errors import MarketUnavailable
from portfolio.events import PortfolioRebalancePlanned, RebalanceExecutionStarted, RebalancePlan
from portfolio.rebalance import (
    REBALANCE_BOOK, CostModel, InvalidAllocation, NegativeWeight, NothingToRebalance, RebalanceNotFound,
    RebalanceNotPlanned, RebalancePlanExpired, UnknownAsset,
)
from tests.conftest import FIXED_NOW, context
from trading.commands import ExecuteTrade, execute_trade

from .support import MARKET, RULES, USER, decide, fold, funded

REBALANCE_ID = uuid.UUID("00000000-0000-4000-8000-00000000000b")
COSTS = CostModel()


def rebalance_context(*, volumes: dict[str, Decimal] | None = None, now: dt.datetime = FIXED_NOW) -> CommandContext:
    return context(actor=USER, now=now, lookups={"market": MARKET, "rules": RULES, "costs": COSTS,
                                                 "volumes": volumes or {}})


def when(given_events: list[Event], cmd: RebalancePortfolio | ExecuteRebalance,
         ctx: CommandContext | None = None) -> list[Event]:
    """Given events, when a rebalance command, then its events (folded as the bus folds the stream)."""
    handler = rebalance_portfolio if isinstance(cmd, RebalancePortfolio) else execute_rebalance
    with decimal.localcontext(MONEY_CONTEXT):
        decision = handler(REBALANCE_BOOK.fold(given_events), cmd, ctx or rebalance_context())
    assert isinstance(decision, Decision)
    return list(decision.events)


def rebalance(targets: dict[str, str], *, execute: bool = False) -> RebalancePortfolio:
    return RebalancePortfolio(user_id=1, rebalance_id=REBALANCE_ID, targets={a: Decimal(w) for a, w in targets.items()},
                              execute=execute)


def plan_of(given_events: list[Event], targets: dict[str, str], **kwargs: object) -> RebalancePlan:
    events = when(given_events, rebalance(targets), rebalance_context(**kwargs))  # type: ignore[arg-type]
    assert isinstance(events[0], PortfolioRebalancePlanned)
    return events[0].plan


def bought(given_events: list[Event], *trades: tuple[str, str]) -> list[Event]:
    """``given_events`` followed by buys of (asset, amount) at the market's prices."""
    events = list(given_events)
    for asset, amount in trades:
        pair = f"{asset}/USD"
        cmd = ExecuteTrade(user_id=1, trade_id=uuid.uuid4(), pair=pair, side="buy", amount=Decimal(amount),
                           price=MARKET.prices[pair])
        events += decide(execute_trade, events, cmd)
    return events


def test_weights_summing_to_99_8_are_an_invalid_allocation_naming_the_sum() -> None:
    with pytest.raises(InvalidAllocation) as refused:
        when(funded(), rebalance({"BTC": "50", "USD": "49.8"}))
    assert "99.8%" in refused.value.detail and refused.value.context == {"sum": "99.8"}


def test_weights_summing_to_100_11_are_an_invalid_allocation() -> None:
    with pytest.raises(InvalidAllocation, match="100.11%"):
        when(funded(), rebalance({"BTC": "50.11", "USD": "50"}))


def test_weights_summing_to_100_05_are_accepted_and_normalised_by_their_sum() -> None:
    plan = plan_of(funded("10000"), {"BTC": "50.05", "USD": "50"})
    btc = next(a for a in plan.assets if a.asset == "BTC")
    assert btc.target_percent == Decimal("50.0250")  # 50.05 / 100.05
    assert btc.target_value == Decimal("5002.498750624687656172")  # 10 000 x 50.05 / 100.05, 18 places
    assert [t.side for t in plan.trades] == ["buy"]


def test_an_asset_the_market_does_not_trade_against_usd_is_unknown() -> None:
    for asset in ("XYZ", "usd", "BTC/USD", ""):
        with pytest.raises(UnknownAsset):
            when(funded(), rebalance({asset: "50", "USD": "50"}))


def test_a_known_pair_without_a_price_yet_is_market_unavailable() -> None:
    with pytest.raises(MarketUnavailable):
        when(funded(), rebalance({"DOGE": "50", "USD": "50"}))


def test_negative_weights_are_refused_even_when_the_sum_is_100() -> None:
    with pytest.raises(NegativeWeight) as refused:
        when(funded(), rebalance({"BTC": "110", "USD": "-10"}))
    assert refused.value.context["asset"] == "USD"


def test_an_empty_portfolio_has_nothing_to_rebalance() -> None:
    with pytest.raises(NothingToRebalance):
        when([], rebalance({"USD": "100"}))


def test_the_plan_is_fixed_in_the_event_with_values_targets_and_estimates() -> None:
    events = when(funded("10000"), rebalance({"BTC": "60", "USD": "40"}))
    assert len(events) == 1 and isinstance(events[0], PortfolioRebalancePlanned)
    event = events[0]
    assert (event.rebalance_id, event.planned_at, event.targets) == (REBALANCE_ID, FIXED_NOW,
                                                                   {"BTC": Decimal("60"), "USD": Decimal("40")})
    plan = event.plan
    assert plan.total_value == 10000 and plan.cash_before == 10000
    (trade,) = plan.trades
    assert (trade.index, trade.pair, trade.side, trade.amount, trade.price) == (0, "BTC/USD", "buy",
                                                                               Decimal("0.12"), Decimal("50000"))
    assert trade.notional == 6000 and trade.estimated_fee == 6  # fee_rate 0.001
    assert trade.estimated_slippage == 60  # no volume known: the 100 bps cap
    assert plan.estimated_fees == 6 and plan.estimated_slippage == 60 and plan.estimated_cost == 66
    assert plan.cash_after == Decimal("3994") and plan.estimated_seconds == 2
    assert [a.asset for a in plan.assets] == ["USD", "BTC"]


def test_slippage_grows_with_the_trade_as_a_share_of_recent_volume() -> None:
    # 6000 USD in a pair trading 600 000 an hour is 1% of it: 5 + 10 bps = 0.15% of 6000.
    plan = plan_of(funded("10000"), {"BTC": "60", "USD": "40"}, volumes={"BTC/USD": Decimal("600000")})
    assert plan.trades[0].estimated_slippage == 9
    assert plan.estimated_cost == Decimal(6 + 9)


def test_held_assets_not_named_are_sold_entirely() -> None:
    given_events = bought(funded("10000"), ("ETH", "1.23456789123"))
    plan = plan_of(given_events, {"USD": "100"})
    (sell,) = plan.trades
    assert (sell.side, sell.asset, sell.amount) == ("sell", "ETH", Decimal("1.23456789123"))
    eth = next(a for a in plan.assets if a.asset == "ETH")
    assert eth.target_percent == 0 and eth.target_quantity == 0


def test_dust_below_the_minimum_trade_is_skipped_and_listed() -> None:
    given_events = bought(funded("10000"), ("SOL", "0.15"))  # 15 USD of SOL; its target is about 10
    plan = plan_of(given_events, {"BTC": "50", "SOL": "0.1", "USD": "49.9"})
    assert [t.asset for t in plan.trades] == ["BTC"]
    (dust,) = plan.skipped
    assert (dust.asset, dust.side, dust.reason) == ("SOL", "sell", "below_min_trade")
    assert dust.notional < RULES.min_trade_usd


def test_all_sells_come_before_any_buy_each_sorted_by_asset() -> None:
    given_events = bought(funded("20000"), ("SOL", "50"), ("BTC", "0.2"))  # 5000 SOL, 10000 BTC, 5000 cash
    plan = plan_of(given_events, {"ETH": "40", "BTC": "10", "USD": "50"})
    assert [(t.index, t.side, t.asset) for t in plan.trades] == [
        (0, "sell", "BTC"), (1, "sell", "SOL"), (2, "buy", "ETH")]


def test_buys_are_scaled_so_that_cash_after_fees_is_never_negative() -> None:
    plan = plan_of(funded("10000"), {"BTC": "50", "ETH": "50"})
    assert 0 <= plan.cash_after < Decimal("0.01")
    assert sum(t.notional + t.estimated_fee for t in plan.trades) <= 10000
    assert [t.asset for t in plan.trades] == ["BTC", "ETH"]


def test_scaling_drops_buys_that_become_dust() -> None:
    plan = plan_of(funded("20"), {"BTC": "50", "ETH": "50"})  # 10 + 10 and fees do not fit in 20
    assert plan.trades == () and plan.cash_after == 20
    assert {s.reason for s in plan.skipped} == {"below_min_trade_after_scaling"}


WEIGHTS = st.lists(st.integers(min_value=0, max_value=1000), min_size=4, max_size=4).filter(lambda w: sum(w) > 0)
HELD = st.lists(st.decimals(min_value=0, max_value=Decimal("0.5"), places=6), min_size=3, max_size=3)


@settings(max_examples=60, deadline=None)
@given(weights=WEIGHTS, held=HELD, cash=st.decimals(min_value=0, max_value=50000, places=2))
def test_executing_any_plan_at_its_prices_is_never_refused_and_never_overdraws(
        weights: list[int], held: list[Decimal], cash: Decimal) -> None:
    assets = ("BTC", "ETH", "SOL")
    # Enough cash to buy the holdings first; then ``cash`` of it is left (buys cost at most 50 000 + fees).
    events = bought(funded(str(cash + 60000)), *[(a, str(q)) for a, q in zip(assets, held) if q * 100 >= 10])
    total = sum(weights)
    # Percentages with 4 places summing to exactly 100 (the remainder goes to cash).
    targets = {a: (Decimal(w) * 100 / total).quantize(Decimal("1e-4"), decimal.ROUND_DOWN)
               for a, w in zip(assets, weights)}
    targets["USD"] = 100 - sum(targets.values())
    try:
        plan = plan_of(events, {a: str(w) for a, w in targets.items()})
    except NothingToRebalance:
        return
    assert [t.index for t in plan.trades] == list(range(len(plan.trades)))
    sides = [t.side for t in plan.trades]
    assert sides == sorted(sides, key=lambda s: s == "buy")
    for trade in plan.trades:
        cmd = ExecuteTrade(user_id=1, trade_id=uuid.uuid4(), pair=trade.pair, side=trade.side, amount=trade.amount,
                           price=trade.price)
        events += decide(execute_trade, events, cmd)  # raises if refused
    state = fold(events)
    assert state is not None and state.cash >= 0 and state.cash == plan.cash_after


def test_execute_true_also_starts_the_execution_with_the_plans_trades() -> None:
    events = when(funded("10000"), rebalance({"BTC": "60", "USD": "40"}, execute=True))
    planned, started = events
    assert isinstance(planned, PortfolioRebalancePlanned) and isinstance(started, RebalanceExecutionStarted)
    assert started.trades == planned.plan.trades and started.rebalance_id == REBALANCE_ID


def test_executing_a_planned_rebalance_starts_it_once() -> None:
    planned = [*funded("10000"), *when(funded("10000"), rebalance({"BTC": "60", "USD": "40"}))]
    execute = ExecuteRebalance(user_id=1, rebalance_id=REBALANCE_ID)
    (started,) = when(planned, execute)
    assert isinstance(started, RebalanceExecutionStarted) and len(started.trades) == 1
    with pytest.raises(RebalanceNotPlanned):
        when([*planned, started], execute)


def test_executing_an_unknown_rebalance_is_not_found() -> None:
    with pytest.raises(RebalanceNotFound):
        when(funded(), ExecuteRebalance(user_id=1, rebalance_id=uuid.uuid4()))


def test_a_plan_older_than_its_time_to_live_may_not_be_executed() -> None:
    planned = [*funded("10000"), *when(funded("10000"), rebalance({"BTC": "60", "USD": "40"}))]
    execute = ExecuteRebalance(user_id=1, rebalance_id=REBALANCE_ID)
    in_time = rebalance_context(now=FIXED_NOW + dt.timedelta(seconds=COSTS.plan_ttl_seconds))
    assert len(when(planned, execute, in_time)) == 1
    too_late = rebalance_context(now=FIXED_NOW + dt.timedelta(seconds=COSTS.plan_ttl_seconds + 1))
    with pytest.raises(RebalancePlanExpired):
        when(planned, execute, too_late)


def test_the_rebalance_book_folds_the_portfolio_exactly_as_the_portfolio_does() -> None:
    events = bought(funded("10000"), ("BTC", "0.1"))
    events += when(events, rebalance({"USD": "100"}, execute=True))
    book = REBALANCE_BOOK.fold(events)
    assert book is not None and book.portfolio == fold(events)
    assert book.rebalances[str(REBALANCE_ID)].status == "executing"


def test_the_rebalance_book_survives_a_snapshot_round_trip() -> None:
    from cqrs_core.serialization import from_json, to_json

    events = bought(funded("10000"), ("BTC", "0.1"))
    events += when(events, rebalance({"ETH": "100"}))
    book = REBALANCE_BOOK.fold(events)
    assert book is not None and book.rebalances[str(REBALANCE_ID)].trades
    assert from_json(REBALANCE_BOOK.state_type, to_json(book)) == book
