"""Errors of the trading context: each refusal a stable code; nothing is stored when one is raised."""
from __future__ import annotations

from cqrs_core.errors import Conflict, NotFound, ValidationFailed


class TradeNotFound(NotFound):
    """The trade does not exist, or is not yours."""

    code = "trade_not_found"


class AmountTooSmall(ValidationFailed):
    """The trade's notional (amount x price) is below the minimum trade size."""

    code = "amount_too_small"


class UnknownPair(ValidationFailed):
    """The market does not know this pair (only <ASSET>/USD pairs trade against cash)."""

    code = "unknown_pair"


class PriceOutOfRange(ValidationFailed):
    """The price is further from the latest market price than the allowed band."""

    code = "price_out_of_range"


class PositionLimitExceeded(Conflict):
    """The position after this trade would exceed the maximum position size."""

    code = "position_limit_exceeded"


class InsufficientPosition(Conflict):
    """You cannot sell more than you hold."""

    code = "insufficient_position"


class DuplicateClientTradeId(Conflict):
    """A trade with this client trade id already exists in your portfolio."""

    code = "duplicate_client_trade_id"
