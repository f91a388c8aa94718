"""Events of the portfolio context: cash moves, reservations, risk limits and trade impacts on ``portfolio-<user_id>``."""
from __future__ import annotations

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
