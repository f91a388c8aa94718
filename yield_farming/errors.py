"""Errors of the yield farming context: each refusal a stable code; nothing is stored when one is raised."""
from __future__ import annotations

from cqrs_core.errors import Conflict, NotFound, ValidationFailed
from portfolio.errors import InsufficientFunds, OperatorsOnly

__all__ = [
    "AmountTooLow", "InsufficientFunds", "InvalidProtocol", "OperatorsOnly", "ProtocolAlreadyListed",
    "ProtocolNotFound", "ReservationNotFound", "StrategyAlreadyRequested", "StrategyNotFound", "UnknownProtocol",
]


class AmountTooLow(ValidationFailed):
    """The strategy amount is below the minimum (USD)."""

    code = "amount_too_low"


class UnknownProtocol(ValidationFailed):
    """A target protocol is not in the catalogue."""

    code = "unknown_protocol"


class InvalidProtocol(ValidationFailed):
    """A protocol's figures are out of range (APY and TVL at least 0, risk score 1 to 10)."""

    code = "invalid_protocol"


class ProtocolNotFound(NotFound):
    """No protocol has this slug."""

    code = "protocol_not_found"


class ProtocolAlreadyListed(Conflict):
    """A protocol with this slug is already listed, with other figures."""

    code = "protocol_already_listed"


class StrategyNotFound(NotFound):
    """The strategy does not exist, or is not yours."""

    code = "strategy_not_found"


class StrategyAlreadyRequested(Conflict):
    """A strategy with this id was already requested on this portfolio."""

    code = "strategy_already_requested"


class ReservationNotFound(Conflict):
    """The strategy's reservation is released or consumed: nothing is left to place."""

    code = "reservation_not_found"
