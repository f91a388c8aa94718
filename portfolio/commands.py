"""Portfolio commands and their pure handlers: open, deposit, withdraw, set risk limits, rebalance."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.contrib.auth import get_user_model

from cqrs_core.commands import Actor, Command, CommandContext, Decision, handles
from cqrs_core.events import Event

from . import market
from .errors import AmountNotPositive, InsufficientFunds, OperatorsOnly, PortfolioAlreadyOpen, PortfolioNotFound
from .events import (
    FundsDeposited, FundsWithdrawn, PortfolioOpened, PortfolioRebalancePlanned, RebalanceExecutionStarted,
    RiskLimitsSet,
)
from .rebalance import (
    EXECUTING, PLANNED, REBALANCE_BOOK, RebalanceBook, RebalanceNotFound, RebalanceNotPlanned, RebalancePlanExpired,
    current_cost_model, plan_rebalance, recent_hourly_volumes,
)
from .rules import current_rules
from .state import PORTFOLIO, Portfolio, portfolio_stream


@dataclass(frozen=True, kw_only=True)
class OpenPortfolio(Command, name="portfolio.OpenPortfolio"):
    user_id: int


@dataclass(frozen=True, kw_only=True)
class DepositFunds(Command, name="portfolio.DepositFunds"):
    user_id: int
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class WithdrawFunds(Command, name="portfolio.WithdrawFunds"):
    user_id: int
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class SetRiskLimits(Command, name="portfolio.SetRiskLimits"):
    user_id: int
    max_position_usd: Decimal


def stream_of(cmd: OpenPortfolio | DepositFunds | WithdrawFunds | SetRiskLimits) -> str:
    return portfolio_stream(cmd.user_id)


def owner_only(cmd: OpenPortfolio | DepositFunds | WithdrawFunds, actor: Actor) -> None:
    """Only the owner (or the system) commands a portfolio; others get 404, as if it did not exist."""
    if not actor.is_system and actor.user_id != cmd.user_id:
        raise PortfolioNotFound(user_id=cmd.user_id)


def operators_only(cmd: SetRiskLimits, actor: Actor) -> None:
    """Risk limits are set by staff (or the system)."""
    if not actor.is_system and not actor.is_staff:
        raise OperatorsOnly()


def opened(portfolio: Portfolio | None, user_id: int) -> tuple[Portfolio, list[Event]]:
    """The portfolio, opening it on first use: its state and the events that opening takes."""
    if portfolio is not None:
        return portfolio, []
    return Portfolio(user_id=user_id), [PortfolioOpened(user_id=user_id)]


def require_positive(**amounts: Decimal) -> None:
    for name, value in amounts.items():
        if value <= 0:
            raise AmountNotPositive(field=name, **{name: str(value)})


def _user_exists(cmd: SetRiskLimits) -> bool:
    return get_user_model().objects.filter(pk=cmd.user_id).exists()


@handles(OpenPortfolio, stream=stream_of, aggregate=PORTFOLIO, authorize=owner_only)
def open_portfolio(portfolio: Portfolio | None, cmd: OpenPortfolio, ctx: CommandContext) -> list[Event]:
    """Open the user's portfolio explicitly; a second open is a conflict."""
    if portfolio is not None:
        raise PortfolioAlreadyOpen(user_id=cmd.user_id)
    return [PortfolioOpened(user_id=cmd.user_id)]


@handles(DepositFunds, stream=stream_of, aggregate=PORTFOLIO, authorize=owner_only)
def deposit_funds(portfolio: Portfolio | None, cmd: DepositFunds, ctx: CommandContext) -> Decision:
    """Add cash (USD), opening the portfolio on first use."""
    require_positive(amount=cmd.amount)
    state, events = opened(portfolio, cmd.user_id)
    return Decision([*events, FundsDeposited(user_id=cmd.user_id, amount=cmd.amount)],
                    {"cash": state.cash + cmd.amount})


@handles(WithdrawFunds, stream=stream_of, aggregate=PORTFOLIO, authorize=owner_only)
def withdraw_funds(portfolio: Portfolio | None, cmd: WithdrawFunds, ctx: CommandContext) -> Decision:
    """Take cash out; never below zero (``insufficient_funds``)."""
    require_positive(amount=cmd.amount)
    cash = portfolio.cash if portfolio is not None else Decimal(0)
    if cmd.amount > cash:
        raise InsufficientFunds(cash=str(cash), amount=str(cmd.amount))
    return Decision([FundsWithdrawn(user_id=cmd.user_id, amount=cmd.amount)], {"cash": cash - cmd.amount})


@handles(SetRiskLimits, stream=stream_of, aggregate=PORTFOLIO, authorize=operators_only,
         lookups={"user_exists": _user_exists})
def set_risk_limits(portfolio: Portfolio | None, cmd: SetRiskLimits, ctx: CommandContext) -> Decision:
    """Set the user's maximum position size (USD); an unknown user is 404 and nothing is written."""
    if not ctx.lookups.get("user_exists", True):
        raise PortfolioNotFound(user_id=cmd.user_id)
    require_positive(max_position_usd=cmd.max_position_usd)
    _, events = opened(portfolio, cmd.user_id)
    return Decision([*events, RiskLimitsSet(user_id=cmd.user_id, max_position_usd=cmd.max_position_usd,
                                            set_by=ctx.actor.user_id)],
                    {"user_id": cmd.user_id, "max_position_usd": cmd.max_position_usd})


# --- rebalancing (portfolio.rebalance plans; portfolio.rebalance_saga executes) ----------------
@dataclass(frozen=True, kw_only=True)
class RebalancePortfolio(Command, name="portfolio.RebalancePortfolio"):
    """Plan trades towards ``targets`` (asset -> percent, ``USD`` is cash); ``execute`` also starts them."""

    user_id: int
    rebalance_id: UUID
    targets: dict[str, Decimal]
    execute: bool = False


@dataclass(frozen=True, kw_only=True)
class ExecuteRebalance(Command, name="portfolio.ExecuteRebalance"):
    """Start executing a planned rebalance (once; within the plan's time to live)."""

    user_id: int
    rebalance_id: UUID


def _rebalance_stream(cmd: RebalancePortfolio | ExecuteRebalance) -> str:
    return portfolio_stream(cmd.user_id)


@handles(RebalancePortfolio, stream=_rebalance_stream, aggregate=REBALANCE_BOOK, authorize=owner_only,
         lookups={"market": lambda c: market.snapshot(), "rules": lambda c: current_rules(),
                  "costs": lambda c: current_cost_model(), "volumes": lambda c: recent_hourly_volumes()})
def rebalance_portfolio(book: RebalanceBook | None, cmd: RebalancePortfolio, ctx: CommandContext) -> Decision:
    """Fix a plan at the latest prices (every refusal stores nothing); with ``execute``, start it too."""
    book = book or RebalanceBook()
    plan = plan_rebalance(book.portfolio, cmd.targets, ctx.lookups["market"], ctx.lookups["rules"],
                          ctx.lookups["costs"], ctx.lookups["volumes"])
    events: list[Event] = [PortfolioRebalancePlanned(user_id=cmd.user_id, rebalance_id=cmd.rebalance_id,
                                                     targets=dict(cmd.targets), plan=plan, planned_at=ctx.now)]
    if cmd.execute:
        events.append(RebalanceExecutionStarted(user_id=cmd.user_id, rebalance_id=cmd.rebalance_id,
                                                trades=plan.trades))
    return Decision(events, {"rebalance_id": cmd.rebalance_id, "status": EXECUTING if cmd.execute else PLANNED,
                             "plan": plan})


@handles(ExecuteRebalance, stream=_rebalance_stream, aggregate=REBALANCE_BOOK, authorize=owner_only,
         lookups={"costs": lambda c: current_cost_model()})
def execute_rebalance(book: RebalanceBook | None, cmd: ExecuteRebalance, ctx: CommandContext) -> Decision:
    """Start a planned rebalance: not yours or unknown is 404; started already or too old is 409."""
    planned = (book or RebalanceBook()).rebalances.get(str(cmd.rebalance_id))
    if planned is None:
        raise RebalanceNotFound(rebalance_id=str(cmd.rebalance_id))
    if planned.status != PLANNED:
        raise RebalanceNotPlanned(rebalance_id=str(cmd.rebalance_id), status=planned.status)
    ttl = ctx.lookups["costs"].plan_ttl_seconds
    if (ctx.now - planned.planned_at).total_seconds() > ttl:
        raise RebalancePlanExpired(rebalance_id=str(cmd.rebalance_id), planned_at=planned.planned_at.isoformat(),
                                   ttl_seconds=ttl)
    return Decision([RebalanceExecutionStarted(user_id=cmd.user_id, rebalance_id=cmd.rebalance_id,
                                               trades=planned.trades)],
                    {"rebalance_id": cmd.rebalance_id, "status": EXECUTING})
