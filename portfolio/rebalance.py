"""Rebalancing: target weights in, a plan of trades out (pure), and the state rebalance commands decide on.

The plan (``plan_rebalance``) values the portfolio at the latest prices, gives every asset its
target (weights are percentages normalised by their sum, which must be 100 within 0.1; held
assets not named get 0), and turns the differences into trades: all sells, then all buys, each
sorted by asset. Quantities are cut (never rounded up) to 8 places. A trade whose notional is
below the minimum trade is dust: skipped and listed. Buys are scaled down together so that cash
after every fee stays at or above zero.

Estimates (``CostModel``, settings ``PORTFOLIO_REBALANCE_*``):

* fee = notional x ``TRADING_FEE_RATE``, as the trade handler will charge it;
* slippage = notional x bps / 10 000 with bps = base + impact x (notional as a percentage of the
  pair's average hourly USD volume over the market's last 24 recorded hours), capped; an unknown
  volume costs the cap. It is an estimate only: trades execute at the latest market price;
* time = trades x seconds per trade (the saga runs them one after another).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal

from django.conf import settings

from cqrs_core.commands import Aggregate
from cqrs_core.errors import Conflict, NotFound, ValidationFailed
from cqrs_core.events import Event
from trading.events import BUY, SELL

from . import market
from .errors import MarketUnavailable
from .events import (
    AssetTarget, PlannedTrade, PortfolioRebalancePlanned, RebalanceExecutionStarted, RebalancePlan, SkippedTrade,
)
from .rules import Rules
from .state import PORTFOLIO, Portfolio

CASH = market.QUOTE
#: How far the weights may sum from 100 (percentage points).
SUM_TOLERANCE = Decimal("0.1")
QUANTITY_PLACES = Decimal("1e-8")
MONEY_PLACES = Decimal("1e-18")
PERCENT_PLACES = Decimal("1e-4")
BPS = Decimal(10_000)
ZERO = Decimal(0)
DUST = "below_min_trade"


class InvalidAllocation(ValidationFailed):
    """Target allocations must sum to 100% (within 0.1)."""

    code = "invalid_allocation"


class NegativeWeight(ValidationFailed):
    """Target allocations cannot be negative."""

    code = "negative_weight"


class UnknownAsset(ValidationFailed):
    """The asset is neither USD nor traded against USD on the market."""

    code = "unknown_asset"


class NothingToRebalance(Conflict):
    """The portfolio has no value to rebalance."""

    code = "nothing_to_rebalance"


class RebalanceNotFound(NotFound):
    """The rebalance does not exist, or is not yours."""

    code = "rebalance_not_found"


class RebalanceNotPlanned(Conflict):
    """The rebalance is already being executed (or was)."""

    code = "rebalance_not_planned"


class RebalancePlanExpired(Conflict):
    """The plan is too old to execute at today's prices: plan again."""

    code = "rebalance_plan_expired"


# --- configuration lookups ----------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CostModel:
    """Slippage (basis points), time per trade and how long a plan stays executable."""

    slippage_bps: Decimal = Decimal(5)
    impact_bps: Decimal = Decimal(10)
    max_slippage_bps: Decimal = Decimal(100)
    seconds_per_trade: Decimal = Decimal(2)
    plan_ttl_seconds: int = 900

    def slippage(self, notional: Decimal, hourly_volume: Decimal | None) -> Decimal:
        """Estimated slippage in USD of a trade of ``notional`` in a pair trading ``hourly_volume`` USD an hour."""
        bps = self.max_slippage_bps
        if hourly_volume:
            bps = min(bps, self.slippage_bps + self.impact_bps * notional * 100 / hourly_volume)
        return (notional * bps / BPS).quantize(MONEY_PLACES)


def current_cost_model() -> CostModel:
    """The cost model as configured now (``PORTFOLIO_REBALANCE_*`` settings)."""
    return CostModel(
        slippage_bps=Decimal(str(settings.PORTFOLIO_REBALANCE_SLIPPAGE_BPS)),
        impact_bps=Decimal(str(settings.PORTFOLIO_REBALANCE_IMPACT_BPS)),
        max_slippage_bps=Decimal(str(settings.PORTFOLIO_REBALANCE_MAX_SLIPPAGE_BPS)),
        seconds_per_trade=Decimal(str(settings.PORTFOLIO_REBALANCE_SECONDS_PER_TRADE)),
        plan_ttl_seconds=int(settings.PORTFOLIO_REBALANCE_PLAN_TTL_SECONDS),
    )


def recent_hourly_volumes() -> dict[str, Decimal]:
    """Average hourly USD volume per pair over the market's last 24 recorded hours (its top-coins query)."""
    from cqrs_core.queries import query_bus
    from market.queries import GetTopCoins

    answer = query_bus.ask(GetTopCoins(window="24h", limit=100, include_stablecoins=True))
    return {coin["pair"]: Decimal(coin["quote_volume"]) / coin["hours"]
            for coin in answer.data["results"] if coin["hours"]}


# --- the plan -----------------------------------------------------------------------------
def checked_weights(targets: Mapping[str, Decimal], snap: market.MarketSnapshot) -> dict[str, Decimal]:
    """The weights if they are valid: none negative, every asset known, summing to 100 within 0.1."""
    for asset, weight in sorted(targets.items()):
        if weight < 0:
            raise NegativeWeight(f"The target of {asset} is negative ({weight}%).", asset=asset, weight=str(weight))
        if asset != CASH and market.pair_of(asset) not in snap.pairs:
            raise UnknownAsset(f"{asset} is neither {CASH} nor traded as {market.pair_of(asset)}.", asset=asset)
    total = sum(targets.values(), ZERO)
    if abs(total - 100) > SUM_TOLERANCE:
        raise InvalidAllocation(f"Target allocations sum to {total}%, not 100% (within {SUM_TOLERANCE}).",
                                sum=str(total))
    return dict(targets)


def plan_rebalance(portfolio: Portfolio | None, targets: Mapping[str, Decimal], snap: market.MarketSnapshot,
                   rules: Rules, costs: CostModel, volumes: Mapping[str, Decimal]) -> RebalancePlan:
    """The plan that takes the portfolio to ``targets`` at ``snap``'s prices (see the module docstring)."""
    weights = checked_weights(targets, snap)
    held = {a: h.quantity for a, h in (portfolio.holdings.items() if portfolio else ()) if h.quantity > 0}
    assets = sorted(set(held) | {a for a in weights if a != CASH})
    prices = {asset: _price(snap, asset) for asset in assets}
    cash = portfolio.cash if portfolio is not None else ZERO
    total = cash + sum((held.get(a, ZERO) * prices[a] for a in assets), ZERO)
    if total <= 0:
        raise NothingToRebalance(total_value=str(total))
    weight_sum = sum(weights.values(), ZERO)
    lines = [_target(a, prices[a], held.get(a, ZERO), weights.get(a, ZERO), total, weight_sum) for a in assets]
    sells, buys, skipped = _trades(lines, rules)
    cash_for_buys = cash + sum((t.notional - _fee(t.notional, rules) for t in sells), ZERO)
    buys, dropped = _affordable(buys, cash_for_buys, rules)
    steps = [_step(i, t, rules, costs, volumes) for i, t in enumerate([*sells, *buys])]
    fees = sum((s.estimated_fee for s in steps), ZERO)
    slippage = sum((s.estimated_slippage for s in steps), ZERO)
    moved = sum((s.notional if s.side == SELL else -s.notional for s in steps), ZERO)
    cash_line = _target(CASH, None, cash, weights.get(CASH, ZERO), total, weight_sum)
    return RebalancePlan(
        total_value=_money(total), cash_before=cash, cash_after=_money(cash + moved - fees),
        assets=(cash_line, *lines), trades=tuple(steps), skipped=(*skipped, *dropped),
        estimated_fees=fees, estimated_slippage=slippage, estimated_cost=fees + slippage,
        estimated_seconds=int((costs.seconds_per_trade * len(steps)).to_integral_value()),
    )


@dataclass(frozen=True)
class _Trade:
    asset: str
    side: str
    amount: Decimal
    price: Decimal

    @property
    def notional(self) -> Decimal:
        return _money(self.amount * self.price)


def _price(snap: market.MarketSnapshot, asset: str) -> Decimal:
    price = snap.price_of(asset)
    if price is None:
        raise MarketUnavailable(pair=market.pair_of(asset))
    return price


def _target(asset: str, price: Decimal | None, quantity: Decimal, weight: Decimal, total: Decimal,
            weight_sum: Decimal) -> AssetTarget:
    value = _money(quantity * price) if price is not None else quantity
    target_value = _money(total * weight / weight_sum)
    target_quantity = target_value if price is None else (target_value / price).quantize(QUANTITY_PLACES, ROUND_DOWN)
    return AssetTarget(asset=asset, price=price, quantity=quantity, value=value, percent=_percent(value, total),
                       target_percent=_percent(weight, weight_sum), target_value=target_value,
                       target_quantity=target_quantity)


def _trades(lines: list[AssetTarget], rules: Rules) -> tuple[list[_Trade], list[_Trade], list[SkippedTrade]]:
    """Sells and buys that close each asset's gap, and the dust left out; each list sorted by asset."""
    sells, buys, skipped = [], [], []
    for line in lines:
        assert line.price is not None
        gap = line.target_quantity - line.quantity
        if gap == 0:
            continue
        # Target zero sells all of it: cutting to 8 places must not leave a remainder behind.
        amount = line.quantity if line.target_percent == 0 else abs(gap)
        trade = _Trade(line.asset, SELL if gap < 0 else BUY, amount, line.price)
        if trade.notional < rules.min_trade_usd:
            skipped.append(_skipped(trade, DUST))
        else:
            (sells if trade.side == SELL else buys).append(trade)
    return sells, buys, skipped


def _affordable(buys: list[_Trade], cash: Decimal, rules: Rules) -> tuple[list[_Trade], list[SkippedTrade]]:
    """The buys scaled down together until their notional and fees fit in ``cash``; dust after scaling is dropped."""
    need = sum((t.notional + _fee(t.notional, rules) for t in buys), ZERO)
    if need <= cash:
        return buys, []
    scale = max(cash, ZERO) / need
    scaled = [replace(t, amount=(t.amount * scale).quantize(QUANTITY_PLACES, ROUND_DOWN)) for t in buys]
    while scaled and sum((t.notional + _fee(t.notional, rules) for t in scaled), ZERO) > cash:
        # Fees round half-even at 18 places: shave one quantum off each buy until they fit.
        scaled = [replace(t, amount=t.amount - QUANTITY_PLACES) for t in scaled]
    kept = [t for t in scaled if t.amount > 0 and t.notional >= rules.min_trade_usd]
    dropped = [_skipped(t, f"{DUST}_after_scaling") for t in scaled if t not in kept]
    return kept, dropped


def _step(index: int, trade: _Trade, rules: Rules, costs: CostModel, volumes: Mapping[str, Decimal]) -> PlannedTrade:
    pair = market.pair_of(trade.asset)
    return PlannedTrade(index=index, pair=pair, asset=trade.asset, side=trade.side, amount=trade.amount,
                        price=trade.price, notional=trade.notional, estimated_fee=_fee(trade.notional, rules),
                        estimated_slippage=costs.slippage(trade.notional, volumes.get(pair)))


def _skipped(trade: _Trade, reason: str) -> SkippedTrade:
    return SkippedTrade(pair=market.pair_of(trade.asset), asset=trade.asset, side=trade.side, amount=trade.amount,
                        notional=trade.notional, reason=reason)


def _fee(notional: Decimal, rules: Rules) -> Decimal:
    """The fee exactly as ``trading.commands.execute_trade`` charges it."""
    return _money(notional * rules.fee_rate)


def _money(value: Decimal) -> Decimal:
    return value.quantize(MONEY_PLACES)


def _percent(part: Decimal, total: Decimal) -> Decimal:
    return (part * 100 / total).quantize(PERCENT_PLACES) if total else ZERO


# --- the state rebalance commands decide on ----------------------------------------------------
PLANNED, EXECUTING = "planned", "executing"


@dataclass(frozen=True)
class PlannedRebalance:
    """A plan of the portfolio: its status and, until it is executed, its trades."""

    status: str
    planned_at: dt.datetime
    trades: tuple[PlannedTrade, ...] = ()


@dataclass(frozen=True)
class RebalanceBook:
    """The portfolio stream folded for rebalance commands: the portfolio and its plans by id."""

    portfolio: Portfolio | None = None
    rebalances: dict[str, PlannedRebalance] = field(default_factory=dict)


def evolve_book(book: RebalanceBook | None, event: Event) -> RebalanceBook:
    """The portfolio's own fold, plus each plan's status (executed plans keep no trades)."""
    book = book or RebalanceBook()
    book = replace(book, portfolio=PORTFOLIO.evolve(book.portfolio, event))
    match event:
        case PortfolioRebalancePlanned():
            entry = PlannedRebalance(PLANNED, event.planned_at, event.plan.trades)
            return replace(book, rebalances={**book.rebalances, str(event.rebalance_id): entry})
        case RebalanceExecutionStarted():
            done = replace(book.rebalances[str(event.rebalance_id)], status=EXECUTING, trades=())
            return replace(book, rebalances={**book.rebalances, str(event.rebalance_id): done})
    return book


#: A second fold of ``portfolio-<user_id>``. Its snapshots take the stream's one snapshot slot
#: from the portfolio's (the stream then folds from its start for either until the next one).
REBALANCE_BOOK = Aggregate("portfolio.rebalance_book", evolve=evolve_book, state_type=RebalanceBook)

