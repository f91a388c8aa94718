"""Configured rules of yield farming, read from settings with defaults (handlers get them as lookups).

``YIELD_MIN_STRATEGY_USD`` (1000): the smallest strategy. ``YIELD_MAX_SHARE_PER_PROTOCOL`` (0.5):
most of a strategy's amount one protocol may take. ``YIELD_MIN_PROTOCOLS`` (2): fewest protocols
a strategy spreads over. ``YIELD_RISK_LIMITS``: per tolerance, the highest risk score, the lowest
TVL (USD) and whether only audited protocols qualify (defaults in ``DEFAULT_RISK_LIMITS``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

CONSERVATIVE, MODERATE, AGGRESSIVE = "conservative", "moderate", "aggressive"
TOLERANCES = (CONSERVATIVE, MODERATE, AGGRESSIVE)


@dataclass(frozen=True, kw_only=True)
class RiskLimit:
    """What one risk tolerance accepts."""

    max_risk_score: int
    min_tvl: Decimal
    audited_only: bool


DEFAULT_RISK_LIMITS: Mapping[str, RiskLimit] = {
    CONSERVATIVE: RiskLimit(max_risk_score=3, min_tvl=Decimal("500000000"), audited_only=True),
    MODERATE: RiskLimit(max_risk_score=6, min_tvl=Decimal("50000000"), audited_only=False),
    AGGRESSIVE: RiskLimit(max_risk_score=10, min_tvl=Decimal("1000000"), audited_only=False),
}


@dataclass(frozen=True, kw_only=True)
class YieldRules:
    min_strategy_usd: Decimal = Decimal(1000)
    max_share_per_protocol: Decimal = Decimal("0.5")
    min_protocols: int = 2
    risk_limits: Mapping[str, RiskLimit] = field(default_factory=lambda: dict(DEFAULT_RISK_LIMITS))


def current_rules() -> YieldRules:
    """The rules as configured now; any setting left out keeps its default."""
    limits = dict(DEFAULT_RISK_LIMITS)
    for name, given in getattr(settings, "YIELD_RISK_LIMITS", {}).items():
        limits[name] = _limit(given)
    return YieldRules(
        min_strategy_usd=Decimal(str(getattr(settings, "YIELD_MIN_STRATEGY_USD", "1000"))),
        max_share_per_protocol=Decimal(str(getattr(settings, "YIELD_MAX_SHARE_PER_PROTOCOL", "0.5"))),
        min_protocols=int(getattr(settings, "YIELD_MIN_PROTOCOLS", 2)),
        risk_limits=limits,
    )


def _limit(given: Mapping[str, Any]) -> RiskLimit:
    return RiskLimit(max_risk_score=int(given["max_risk_score"]), min_tvl=Decimal(str(given["min_tvl"])),
                     audited_only=bool(given["audited_only"]))
