"""Events of the yield farming context.

The protocol catalogue lives on one stream, ``yield_farming-catalogue``. A strategy request and
the positions it opens are decided on the user's ``portfolio-<user_id>`` stream, where the cash
is, so they share the portfolio's consistency boundary with deposits, withdrawals and trades.
APYs are percentages per year (``"4.25"`` is 4.25 %), TVLs are USD; both exact decimals.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from cqrs_core.events import Event


@dataclass(frozen=True, kw_only=True)
class ProtocolListed(Event, name="yield_farming.ProtocolListed"):
    """A protocol entered the catalogue; ``risk_score`` runs from 1 (safest) to 10."""

    slug: str
    name: str
    chain: str
    asset: str
    apy: Decimal
    tvl: Decimal
    audited: bool
    risk_score: int


@dataclass(frozen=True, kw_only=True)
class ProtocolUpdated(Event, name="yield_farming.ProtocolUpdated"):
    """An operator changed a protocol; every field carries its value after the change."""

    slug: str
    name: str
    chain: str
    asset: str
    apy: Decimal
    tvl: Decimal
    audited: bool
    risk_score: int
    updated_by: int | None


@dataclass(frozen=True, kw_only=True)
class ProtocolApyChanged(Event, name="yield_farming.ProtocolApyChanged"):
    """The (simulated) market moved a protocol's APY."""

    slug: str
    apy: Decimal
    previous_apy: Decimal
    as_of: dt.datetime


@dataclass(frozen=True, kw_only=True)
class YieldStrategyExecutionRequested(Event, name="yield_farming.YieldStrategyExecutionRequested"):
    """A user asked to farm ``amount`` USD, reserved on their portfolio under ``strategy_id``.

    ``protocols`` is the list of target slugs, or ``("any",)`` for the whole catalogue.
    """

    strategy_id: UUID
    user_id: int
    protocols: tuple[str, ...]
    amount: Decimal
    risk_tolerance: str
    requested_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class YieldPositionOpened(Event, name="yield_farming.YieldPositionOpened"):
    """Reserved cash became yield principal in one protocol, at the APY it had at that moment."""

    user_id: int
    position_id: UUID
    strategy_id: UUID
    protocol: str
    principal: Decimal
    apy: Decimal
    opened_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class YieldPositionClosed(Event, name="yield_farming.YieldPositionClosed"):
    """A position's principal went back to cash (accrued yield is shown, not paid, in this slice)."""

    user_id: int
    position_id: UUID
    strategy_id: UUID
    protocol: str
    principal: Decimal
    reason: str
    closed_at: dt.datetime
