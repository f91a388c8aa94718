"""Errors of the portfolio context: each a stable code and an HTTP status."""
from __future__ import annotations

from cqrs_core.errors import Conflict, Forbidden, NotFound, ServiceUnavailable, ValidationFailed


class PortfolioNotFound(NotFound):
    """The portfolio does not exist, or is not yours."""

    code = "portfolio_not_found"


class PortfolioAlreadyOpen(Conflict):
    """The user already has a portfolio."""

    code = "portfolio_already_open"


class AmountNotPositive(ValidationFailed):
    """Amounts and prices must be greater than zero."""

    code = "amount_not_positive"


class InsufficientFunds(Conflict):
    """Not enough cash in the portfolio."""

    code = "insufficient_funds"


class OperatorsOnly(Forbidden):
    """Only operators (staff) may do this."""

    code = "operators_only"


class MarketUnavailable(ServiceUnavailable):
    """No latest market price is known for this pair yet; retry shortly."""

    code = "market_price_unavailable"


class OptimizationFailed(ServiceUnavailable):
    """The last optimisation of this portfolio failed; asking again starts a new one."""

    code = "optimization_failed"
