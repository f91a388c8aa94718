"""Configured limits of trading and portfolios, read from settings as a lookup (handlers stay pure)."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings


@dataclass(frozen=True, kw_only=True)
class Rules:
    """Minimum trade, price band, fee rate, default position limit and impact threshold."""

    min_trade_usd: Decimal = Decimal(10)
    price_band: Decimal = Decimal("0.05")
    fee_rate: Decimal = Decimal("0.001")
    default_max_position_usd: Decimal = Decimal(100_000)
    impact_threshold: Decimal = Decimal("0.05")


def current_rules() -> Rules:
    """The rules as configured now (``TRADING_*`` and ``PORTFOLIO_*`` settings)."""
    return Rules(
        min_trade_usd=Decimal(str(settings.TRADING_MIN_TRADE_USD)),
        price_band=Decimal(str(settings.TRADING_PRICE_BAND)),
        fee_rate=Decimal(str(settings.TRADING_FEE_RATE)),
        default_max_position_usd=Decimal(str(settings.PORTFOLIO_DEFAULT_MAX_POSITION_USD)),
        impact_threshold=Decimal(str(settings.PORTFOLIO_IMPACT_THRESHOLD)),
    )
