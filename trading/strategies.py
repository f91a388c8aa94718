"""Trading strategies: the aggregate on ``strategy-<id>``, risk profiles and the rules a signal must pass.

Rules (all checked when a strategy is created or updated, code ``invalid_strategy_rules`` unless noted):

* ``allowed_pairs``: one or more distinct pairs the market knows, each quoted in USD (``unknown_pair``).
* ``allowed_sides``: one or both of ``buy`` and ``sell``, distinct.
* ``max_notional_usd``: optional USD cap of one trade's notional; at least the minimum trade size.
* ``max_portfolio_share``: optional cap of one trade's notional as a share of the portfolio's value
  before it (latest market prices): 0 < share <= 1.

A risk profile (``conservative``, ``moderate``, ``aggressive``) adds configured caps of its own
(``TRADING_RISK_PROFILES``, defaults below): a signal must pass the stricter of the strategy's cap
and its profile's, and a signal that states a ``confidence`` must reach the profile's minimum.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings

from cqrs_core.commands import Aggregate
from cqrs_core.events import Event
from portfolio.market import QUOTE

from .errors import (
    ConfidenceTooLow, InvalidRiskProfile, InvalidStrategyName, InvalidStrategyRules, MaxNotionalExceeded,
    MaxPortfolioShareExceeded, PairNotAllowed, SideNotAllowed, UnknownPair,
)
from .events import BUY, SELL, StrategyArchived, StrategyCreated, StrategyRules, StrategyUpdated

CONSERVATIVE, MODERATE, AGGRESSIVE = "conservative", "moderate", "aggressive"
RISK_PROFILES = (CONSERVATIVE, MODERATE, AGGRESSIVE)
MAX_NAME_LENGTH = 100
#: Caps of each risk profile unless ``settings.TRADING_RISK_PROFILES`` overrides them (values as strings).
DEFAULT_RISK_PROFILES: dict[str, dict[str, str]] = {
    CONSERVATIVE: {"max_notional_usd": "1000", "max_portfolio_share": "0.02", "min_confidence": "0.8"},
    MODERATE: {"max_notional_usd": "10000", "max_portfolio_share": "0.1", "min_confidence": "0.5"},
    AGGRESSIVE: {"max_notional_usd": "100000", "max_portfolio_share": "0.5", "min_confidence": "0"},
}


def strategy_stream(strategy_id: UUID) -> str:
    """The stream of one strategy: its definition and lifecycle (its trades live on the owner's portfolio)."""
    return f"strategy-{strategy_id}"


@dataclass(frozen=True, kw_only=True)
class RiskLimits:
    """The caps a risk profile puts on every signal."""

    max_notional_usd: Decimal
    max_portfolio_share: Decimal
    min_confidence: Decimal


def risk_profiles() -> dict[str, RiskLimits]:
    """The configured limits of each profile (a lookup: handlers stay pure)."""
    configured: dict[str, dict[str, Any]] = getattr(settings, "TRADING_RISK_PROFILES", {})
    return {name: RiskLimits(**{key: Decimal(str(value)) for key, value in
                                {**DEFAULT_RISK_PROFILES[name], **configured.get(name, {})}.items()})
            for name in RISK_PROFILES}


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """A strategy as its stream folds: owner, definition and whether it is archived."""

    strategy_id: UUID
    owner_id: int
    name: str
    rules: StrategyRules
    risk_profile: str
    archived: bool = False


def evolve(state: Strategy | None, event: Event) -> Strategy | None:
    match event:
        case StrategyCreated():
            return Strategy(strategy_id=event.strategy_id, owner_id=event.owner_id, name=event.name,
                            rules=event.rules, risk_profile=event.risk_profile)
        case StrategyUpdated() if state is not None:
            return replace(state, name=event.name, rules=event.rules, risk_profile=event.risk_profile)
        case StrategyArchived() if state is not None:
            return replace(state, archived=True)
    return state


STRATEGY = Aggregate("trading.strategy", evolve=evolve, state_type=Strategy)


# --- validation of a definition -----------------------------------------------------------------
def validate_definition(name: str, rules: StrategyRules, risk_profile: str, *, known_pairs: frozenset[str],
                        min_trade_usd: Decimal) -> None:
    """Raise the first broken rule of a strategy's definition (see the module docstring)."""
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidStrategyName(field="name")
    if risk_profile not in RISK_PROFILES:
        raise InvalidRiskProfile(risk_profile=risk_profile, allowed=list(RISK_PROFILES))
    _validate_pairs(rules.allowed_pairs, known_pairs)
    if not rules.allowed_sides or len(set(rules.allowed_sides)) != len(rules.allowed_sides) \
            or not set(rules.allowed_sides) <= {BUY, SELL}:
        raise InvalidStrategyRules("allowed_sides must be buy, sell or both, each once.", field="allowed_sides")
    cap = rules.max_notional_usd
    if cap is not None and cap < min_trade_usd:
        raise InvalidStrategyRules(f"max_notional_usd must be at least the minimum trade of {min_trade_usd} USD.",
                                   field="max_notional_usd", minimum=str(min_trade_usd))
    share = rules.max_portfolio_share
    if share is not None and not Decimal(0) < share <= Decimal(1):
        raise InvalidStrategyRules("max_portfolio_share must be above 0 and at most 1.", field="max_portfolio_share")


def _validate_pairs(pairs: tuple[str, ...], known_pairs: frozenset[str]) -> None:
    if not pairs or len(set(pairs)) != len(pairs):
        raise InvalidStrategyRules("allowed_pairs must list one or more distinct pairs.", field="allowed_pairs")
    for pair in pairs:
        if pair not in known_pairs or not pair.endswith(f"/{QUOTE}"):
            raise UnknownPair(pair=pair, field="allowed_pairs")


# --- checking a signal --------------------------------------------------------------------------
def check_signal(strategy: Strategy, limits: RiskLimits, *, pair: str, side: str, notional: Decimal,
                 portfolio_value: Decimal, confidence: Decimal | None) -> None:
    """Raise the first rule of the strategy or its risk profile that this signal breaks."""
    rules = strategy.rules
    if pair not in rules.allowed_pairs:
        raise PairNotAllowed(pair=pair, allowed_pairs=list(rules.allowed_pairs))
    if side not in rules.allowed_sides:
        raise SideNotAllowed(side=side, allowed_sides=list(rules.allowed_sides))
    if confidence is not None and confidence < limits.min_confidence:
        raise ConfidenceTooLow(confidence=str(confidence), min_confidence=str(limits.min_confidence))
    cap = _stricter(rules.max_notional_usd, limits.max_notional_usd)
    if notional > cap:
        raise MaxNotionalExceeded(notional=str(notional), max_notional_usd=str(cap))
    share = _stricter(rules.max_portfolio_share, limits.max_portfolio_share)
    if portfolio_value <= 0 or notional > portfolio_value * share:
        raise MaxPortfolioShareExceeded(notional=str(notional), portfolio_value=str(portfolio_value),
                                        max_portfolio_share=str(share))


def _stricter(own: Decimal | None, profile: Decimal) -> Decimal:
    return profile if own is None else min(own, profile)
