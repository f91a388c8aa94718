"""Domain errors of the market context."""
from __future__ import annotations

from cqrs_core.errors import ValidationFailed


class UnknownPair(ValidationFailed):
    """The market does not know this pair."""

    code = "unknown_pair"


class UnsupportedTimeframe(ValidationFailed):
    """Candles must be 1m, 5m, 15m or 1h."""

    code = "unsupported_timeframe"


class InvalidCandle(ValidationFailed):
    """A candle is inconsistent (low <= open, close <= high; positive prices; volume >= 0)."""

    code = "invalid_candle"


class BatchTooLarge(ValidationFailed):
    """Too many candles in one batch."""

    code = "batch_too_large"
