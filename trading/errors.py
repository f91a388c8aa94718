"""Errors of the trading context: each refusal a stable code; nothing is stored when one is raised."""
from __future__ import annotations

from cqrs_core.errors import Conflict, Forbidden, NotFound, ValidationFailed


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


# --- strategies ---------------------------------------------------------------------------------
class StrategyNotFound(NotFound):
    """The strategy does not exist, or is not yours."""

    code = "strategy_not_found"


class NotStrategyOwner(Forbidden):
    """Staff may read any strategy, but only its owner changes it or sends it signals."""

    code = "not_strategy_owner"


class StrategyAlreadyExists(Conflict):
    """A strategy with this id already exists."""

    code = "strategy_already_exists"


class StrategyIsArchived(Conflict):
    """The strategy is archived: it takes no updates and no signals."""

    code = "strategy_archived"


class InvalidStrategyRules(ValidationFailed):
    """The strategy's rules are not valid (see ``field`` and ``detail``)."""

    code = "invalid_strategy_rules"


class InvalidStrategyName(ValidationFailed):
    """A strategy's name is 1 to 100 characters, not only spaces."""

    code = "invalid_strategy_name"


class InvalidRiskProfile(ValidationFailed):
    """The risk profile is not one of conservative, moderate or aggressive."""

    code = "invalid_risk_profile"


class SignalRuleBroken(Conflict):
    """A signal broke its strategy's rules; signals record this as a rejection, never answer it as an error."""

    code = "signal_rule_broken"


class PairNotAllowed(SignalRuleBroken):
    """The strategy does not trade this pair."""

    code = "pair_not_allowed"


class SideNotAllowed(SignalRuleBroken):
    """The strategy does not trade this side."""

    code = "side_not_allowed"


class MaxNotionalExceeded(SignalRuleBroken):
    """The trade's notional is above the strategy's (or its risk profile's) maximum per trade."""

    code = "max_notional_exceeded"


class MaxPortfolioShareExceeded(SignalRuleBroken):
    """The trade's notional is above the allowed share of the portfolio's value."""

    code = "max_portfolio_share_exceeded"


class ConfidenceTooLow(SignalRuleBroken):
    """The signal's confidence is below the risk profile's minimum."""

    code = "confidence_too_low"
