"""Trading commands: execute a trade, decided on the portfolio stream with the portfolio aggregate."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from cqrs_core.commands import CommandContext, Command, Decision, handles
from cqrs_core.events import Event
from portfolio import market
from portfolio.commands import owner_only, require_positive
from portfolio.errors import InsufficientFunds, MarketUnavailable
from portfolio.events import PortfolioImpacted
from portfolio.market import MarketSnapshot
from portfolio.rules import Rules, current_rules
from portfolio.state import PORTFOLIO, Holding, Portfolio, portfolio_stream

from .errors import (
    AmountTooSmall, DuplicateClientTradeId, InsufficientPosition, PositionLimitExceeded, PriceOutOfRange, UnknownPair,
)
from .events import BUY, TradeExecuted

#: Money in events is fixed to 18 places (the read models' scale); products of two 18-place
#: numbers would otherwise need 36.
MONEY_PLACES = Decimal("1e-18")
PERCENT_PLACES = Decimal("1e-4")


@dataclass(frozen=True, kw_only=True)
class ExecuteTrade(Command, name="trading.ExecuteTrade"):
    user_id: int
    trade_id: UUID
    pair: str
    side: str
    amount: Decimal
    price: Decimal
    client_trade_id: str | None = None


def money(value: Decimal) -> Decimal:
    return value.quantize(MONEY_PLACES)


@handles(ExecuteTrade, stream=lambda c: portfolio_stream(c.user_id), aggregate=PORTFOLIO, authorize=owner_only,
         lookups={"market": lambda c: market.snapshot(), "rules": lambda c: current_rules()})
def execute_trade(portfolio: Portfolio | None, cmd: ExecuteTrade, ctx: CommandContext) -> Decision:
    """Validate and fill a trade against the user's cash and holdings; each refusal stores nothing."""
    return decide_trade(portfolio, cmd, ctx)


def decide_trade(portfolio: Portfolio | None, cmd: ExecuteTrade, ctx: CommandContext, *,
                 strategy_id: UUID | None = None) -> Decision:
    """The trade's events and result, or the refusal it raises: shared by trades and strategy signals.

    Needs the ``market`` and ``rules`` lookups; ``strategy_id`` is recorded on the ``TradeExecuted``.
    """
    snap: MarketSnapshot = ctx.lookups["market"]
    rules: Rules = ctx.lookups["rules"]
    state = portfolio or Portfolio(user_id=cmd.user_id)
    market_price = _check_order(cmd, snap, rules, state)
    notional = money(cmd.amount * cmd.price)
    fee = money(notional * rules.fee_rate)
    asset = cmd.pair.split("/")[0]
    held = state.holding(asset)
    if cmd.side == BUY:
        average_cost, pnl = _buy(cmd, rules, state, held, notional, fee)
    else:
        average_cost, pnl = _sell(cmd, held)
    trade = TradeExecuted(
        trade_id=cmd.trade_id, user_id=cmd.user_id, client_trade_id=cmd.client_trade_id, pair=cmd.pair,
        asset=asset, side=cmd.side, amount=cmd.amount, price=cmd.price, notional=notional, fee=fee,
        realised_pnl=pnl, average_cost=average_cost, market_price=market_price, executed_at=ctx.now,
        strategy_id=strategy_id,
    )
    events: list[Event] = [trade]
    impact = _impact(state, trade, snap, rules)
    if impact is not None:
        events.append(impact)
    return Decision(events, {"trade_id": cmd.trade_id, "notional": notional, "fee": fee, "realised_pnl": pnl,
                             "portfolio_impacted": impact is not None})


def _check_order(cmd: ExecuteTrade, snap: MarketSnapshot, rules: Rules, state: Portfolio) -> Decimal:
    """The checks that need no holdings, in order; returns the latest market price."""
    if cmd.pair not in snap.pairs or not cmd.pair.endswith(f"/{market.QUOTE}"):
        raise UnknownPair(pair=cmd.pair)
    require_positive(amount=cmd.amount, price=cmd.price)
    notional = cmd.amount * cmd.price
    if notional < rules.min_trade_usd:
        raise AmountTooSmall(notional=str(money(notional)), minimum=str(rules.min_trade_usd))
    market_price = snap.prices.get(cmd.pair)
    if market_price is None:
        raise MarketUnavailable(pair=cmd.pair)
    if abs(cmd.price - market_price) > market_price * rules.price_band:
        raise PriceOutOfRange(pair=cmd.pair, price=str(cmd.price), market_price=str(market_price),
                              band=str(rules.price_band))
    if cmd.client_trade_id is not None and cmd.client_trade_id in state.client_trade_ids:
        raise DuplicateClientTradeId(client_trade_id=cmd.client_trade_id)
    return market_price


def _buy(cmd: ExecuteTrade, rules: Rules, state: Portfolio, held: Holding, notional: Decimal,
         fee: Decimal) -> tuple[Decimal, Decimal]:
    """Average cost after a buy; buys realise nothing."""
    limit = state.max_position_usd if state.max_position_usd is not None else rules.default_max_position_usd
    quantity = held.quantity + cmd.amount
    if quantity * cmd.price > limit:
        raise PositionLimitExceeded(position_usd=str(money(quantity * cmd.price)), limit=str(limit))
    if notional + fee > state.cash:
        raise InsufficientFunds(cash=str(state.cash), required=str(notional + fee))
    return money((held.quantity * held.average_cost + notional) / quantity), Decimal(0)


def _sell(cmd: ExecuteTrade, held: Holding) -> tuple[Decimal, Decimal]:
    """Average cost after a sell (unchanged, zero once flat) and the P&L it realises."""
    if cmd.amount > held.quantity:
        raise InsufficientPosition(held=str(held.quantity), amount=str(cmd.amount))
    pnl = money((cmd.price - held.average_cost) * cmd.amount)
    return (held.average_cost if cmd.amount < held.quantity else Decimal(0)), pnl


def portfolio_value(state: Portfolio, snap: MarketSnapshot) -> Decimal:
    """Everything the portfolio holds, as Get portfolio values it: cash, reserved cash, yield principal
    and holdings at latest prices (average cost where the market has no price)."""
    total = state.cash + state.reserved + state.yield_principal
    for asset, held in state.holdings.items():
        price = snap.price_of(asset)
        total += held.quantity * (price if price is not None else held.average_cost)
    return total


def _impact(before: Portfolio, trade: TradeExecuted, snap: MarketSnapshot, rules: Rules) -> PortfolioImpacted | None:
    """``PortfolioImpacted`` when the trade's notional exceeds the threshold share of the value before it."""
    value_before = portfolio_value(before, snap)
    if value_before <= 0 or trade.notional <= value_before * rules.impact_threshold:
        return None
    after = PORTFOLIO.evolve(before, trade)
    assert after is not None
    return PortfolioImpacted(
        user_id=trade.user_id, trade_id=trade.trade_id, value_before=money(value_before),
        value_after=money(portfolio_value(after, snap)), notional=trade.notional,
        change_percent=(trade.notional * 100 / value_before).quantize(PERCENT_PLACES),
    )
