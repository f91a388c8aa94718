"""Events of the portfolio context: cash moves, reservations, risk limits and trade impacts on ``portfolio-<user_id>``."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from cqrs_core.events import Event


@dataclass(frozen=True, kw_only=True)
class PortfolioOpened(Event, name="portfolio.PortfolioOpened"):
    """The user's one portfolio exists (first use, or an explicit command)."""

    user_id: int


@dataclass(frozen=True, kw_only=True)
class FundsDeposited(Event, name="portfolio.FundsDeposited"):
    user_id: int
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class FundsWithdrawn(Event, name="portfolio.FundsWithdrawn"):
    user_id: int
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class RiskLimitsSet(Event, name="portfolio.RiskLimitsSet"):
    """An operator set the user's maximum position size (USD, valued at the trade price)."""

    user_id: int
    max_position_usd: Decimal
    set_by: int | None


@dataclass(frozen=True, kw_only=True)
class PortfolioImpacted(Event, name="portfolio.PortfolioImpacted"):
    """A trade moved more than the configured share of the portfolio's value.

    ``change_percent`` is the trade's notional as a percentage of the portfolio's value before
    the trade (valued at latest market prices), rounded to 4 places.
    """

    user_id: int
    trade_id: UUID
    value_before: Decimal
    value_after: Decimal
    notional: Decimal
    change_percent: Decimal


@dataclass(frozen=True, kw_only=True)
class FundsReserved(Event, name="portfolio.FundsReserved"):
    """Cash set aside for a pending use (a yield strategy): moved from ``cash`` to ``reserved``.

    Reserved cash cannot be traded or withdrawn; it leaves the reservation only as yield
    principal (``yield_farming.YieldPositionOpened``) or back to cash (``ReservationReleased``).
    """

    user_id: int
    reservation_id: UUID
    amount: Decimal
    purpose: str


@dataclass(frozen=True, kw_only=True)
class ReservationReleased(Event, name="portfolio.ReservationReleased"):
    """What was left of a reservation went back to cash (``reason`` says why)."""

    user_id: int
    reservation_id: UUID
    amount: Decimal
    reason: str


# --- rebalancing ----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class AssetTarget:
    """Where one asset (``USD``: cash) stands and where the plan takes it; USD has no price."""

    asset: str
    price: Decimal | None
    quantity: Decimal
    value: Decimal
    percent: Decimal
    target_percent: Decimal
    target_value: Decimal
    target_quantity: Decimal


@dataclass(frozen=True, kw_only=True)
class PlannedTrade:
    """One execution step: ``index`` is its place in the plan (all sells come before any buy)."""

    index: int
    pair: str
    asset: str
    side: str
    amount: Decimal
    price: Decimal
    notional: Decimal
    estimated_fee: Decimal
    estimated_slippage: Decimal


@dataclass(frozen=True, kw_only=True)
class SkippedTrade:
    """A trade the plan leaves out, and why (``below_min_trade``: dust)."""

    pair: str
    asset: str
    side: str
    amount: Decimal
    notional: Decimal
    reason: str


@dataclass(frozen=True, kw_only=True)
class RebalancePlan:
    """A rebalance plan, fixed when it was made: valuations, ordered trades, dust and estimates."""

    total_value: Decimal
    cash_before: Decimal
    cash_after: Decimal
    assets: tuple[AssetTarget, ...]
    trades: tuple[PlannedTrade, ...]
    skipped: tuple[SkippedTrade, ...]
    estimated_fees: Decimal
    estimated_slippage: Decimal
    estimated_cost: Decimal
    estimated_seconds: int


@dataclass(frozen=True, kw_only=True)
class PortfolioRebalancePlanned(Event, name="portfolio.PortfolioRebalancePlanned"):
    """A rebalance was planned at the prices of ``planned_at``; the plan is final, never recomputed."""

    user_id: int
    rebalance_id: UUID
    targets: dict[str, Decimal]
    plan: RebalancePlan
    planned_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class RebalanceExecutionStarted(Event, name="portfolio.RebalanceExecutionStarted"):
    """A planned rebalance is to be executed: starts ``RebalanceSaga`` with these trades, in order."""

    user_id: int
    rebalance_id: UUID
    trades: tuple[PlannedTrade, ...]
