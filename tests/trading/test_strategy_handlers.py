"""Strategy handlers, given events -> when a command -> then events or a stable error; no database."""
from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from cqrs_core.commands import SYSTEM, Actor
from cqrs_core.errors import DomainError
from cqrs_core.events import decode_event
from portfolio.errors import AmountNotPositive, MarketUnavailable
from portfolio.events import PortfolioImpacted
from portfolio.state import PORTFOLIO
from tests.conftest import FIXED_NOW
from tests.portfolio.support import ExecuteTradeFactory, decide, funded
from trading.commands import execute_trade
from trading.errors import (
    DuplicateClientTradeId, InvalidRiskProfile, InvalidStrategyName, InvalidStrategyRules, NotStrategyOwner,
    StrategyAlreadyExists, StrategyIsArchived, StrategyNotFound, UnknownPair,
)
from trading.events import (
    StrategyArchived, StrategyCreated, StrategyRules, StrategyUpdated, TradeExecuted, TradeSignalAccepted,
    TradeSignalRejected,
)
from trading.strategies import RiskLimits, risk_profiles
from trading.strategy_commands import (
    ArchiveStrategy, UpdateStrategy, archive_strategy, create_strategy, strategy_owner_only, update_strategy,
)

from .support import (
    RULES_BTC_ETH, STRATEGY_ID, CreateStrategyFactory, SignalFactory, StrategyCreatedFactory, archived, decide_signal,
    decide_strategy, definition_context, signal_context, strategy,
)

STAFF = Actor(user_id=9, is_staff=True)
OTHER = Actor(user_id=2)


def rules(**changes: object) -> StrategyRules:
    return dataclasses.replace(RULES_BTC_ETH, **changes)


# --- create ----------------------------------------------------------------------------------------
def test_creating_a_strategy_records_its_definition() -> None:
    decision = decide_strategy(create_strategy, [], CreateStrategyFactory())
    assert list(decision.events) == [StrategyCreated(
        strategy_id=STRATEGY_ID, owner_id=1, name="BTC/ETH momentum", rules=RULES_BTC_ETH, risk_profile="moderate",
        created_at=FIXED_NOW)]
    assert decision.result == {"strategy_id": STRATEGY_ID, "status": "active"}
    assert strategy(*decision.events).archived is False


def test_an_existing_strategy_id_is_a_conflict() -> None:
    with pytest.raises(StrategyAlreadyExists):
        decide_strategy(create_strategy, [StrategyCreatedFactory()], CreateStrategyFactory())


@pytest.mark.parametrize(("changes", "error", "field"), [
    ({"allowed_pairs": ()}, InvalidStrategyRules, "allowed_pairs"),
    ({"allowed_pairs": ("BTC/USD", "BTC/USD")}, InvalidStrategyRules, "allowed_pairs"),
    ({"allowed_pairs": ("BTC/USD", "XRP/USD")}, UnknownPair, "allowed_pairs"),
    ({"allowed_pairs": ("ETH/BTC",)}, UnknownPair, "allowed_pairs"),
    ({"allowed_sides": ()}, InvalidStrategyRules, "allowed_sides"),
    ({"allowed_sides": ("buy", "buy")}, InvalidStrategyRules, "allowed_sides"),
    ({"allowed_sides": ("short",)}, InvalidStrategyRules, "allowed_sides"),
    ({"max_notional_usd": Decimal("9.999")}, InvalidStrategyRules, "max_notional_usd"),
    ({"max_notional_usd": Decimal("-1")}, InvalidStrategyRules, "max_notional_usd"),
    ({"max_portfolio_share": Decimal(0)}, InvalidStrategyRules, "max_portfolio_share"),
    ({"max_portfolio_share": Decimal("-0.1")}, InvalidStrategyRules, "max_portfolio_share"),
    ({"max_portfolio_share": Decimal("1.000000000000000001")}, InvalidStrategyRules, "max_portfolio_share"),
])
def test_each_broken_rule_is_refused_with_its_code_and_field(changes: dict, error: type[DomainError],
                                                             field: str) -> None:
    with pytest.raises(error) as refused:
        decide_strategy(create_strategy, [], CreateStrategyFactory(rules=rules(**changes)))
    assert refused.value.context["field"] == field


@pytest.mark.parametrize("changes", [
    {"max_notional_usd": Decimal(10)}, {"max_portfolio_share": Decimal(1)}, {"allowed_sides": ("sell",)},
    {"max_notional_usd": None, "max_portfolio_share": None}, {"allowed_pairs": ("DOGE/USD",)},
])
def test_rules_at_their_limits_are_accepted(changes: dict) -> None:
    assert decide_strategy(create_strategy, [], CreateStrategyFactory(rules=rules(**changes))).events


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_name_is_one_to_a_hundred_characters(name: str) -> None:
    with pytest.raises(InvalidStrategyName):
        decide_strategy(create_strategy, [], CreateStrategyFactory(name=name))


def test_an_unknown_risk_profile_is_refused() -> None:
    with pytest.raises(InvalidRiskProfile):
        decide_strategy(create_strategy, [], CreateStrategyFactory(risk_profile="yolo"))


def test_users_create_strategies_only_for_themselves() -> None:
    from trading.strategy_commands import creator_only

    with pytest.raises(StrategyNotFound):
        creator_only(CreateStrategyFactory(owner_id=1), OTHER)
    creator_only(CreateStrategyFactory(owner_id=1), SYSTEM)


# --- update and archive ------------------------------------------------------------------------------
def test_an_update_records_all_three_fields_as_they_end_up() -> None:
    decision = decide_strategy(update_strategy, [StrategyCreatedFactory()],
                               UpdateStrategy(strategy_id=STRATEGY_ID, risk_profile="conservative"))
    assert list(decision.events) == [StrategyUpdated(
        strategy_id=STRATEGY_ID, owner_id=1, name="BTC/ETH momentum", rules=RULES_BTC_ETH,
        risk_profile="conservative", updated_at=FIXED_NOW)]
    state = strategy(StrategyCreatedFactory(), *decision.events)
    assert state.risk_profile == "conservative" and state.rules == RULES_BTC_ETH


def test_an_update_is_validated_like_a_creation() -> None:
    with pytest.raises(InvalidStrategyRules):
        decide_strategy(update_strategy, [StrategyCreatedFactory()],
                        UpdateStrategy(strategy_id=STRATEGY_ID, rules=rules(max_portfolio_share=Decimal(2))))


@pytest.mark.parametrize("handler, command", [
    (update_strategy, UpdateStrategy(strategy_id=STRATEGY_ID, name="new")),
    (archive_strategy, ArchiveStrategy(strategy_id=STRATEGY_ID)),
])
def test_only_the_owner_changes_an_active_strategy(handler: object, command: object) -> None:
    with pytest.raises(StrategyNotFound):
        decide_strategy(handler, [], command)
    with pytest.raises(StrategyNotFound):
        decide_strategy(handler, [StrategyCreatedFactory()], command, definition_context(OTHER))
    with pytest.raises(NotStrategyOwner):
        decide_strategy(handler, [StrategyCreatedFactory()], command, definition_context(STAFF))
    with pytest.raises(StrategyIsArchived):
        decide_strategy(handler, archived(), command)
    assert decide_strategy(handler, [StrategyCreatedFactory()], command, definition_context(SYSTEM)).events


def test_archiving_keeps_the_definition_and_marks_it_archived() -> None:
    decision = decide_strategy(archive_strategy, [StrategyCreatedFactory()], ArchiveStrategy(strategy_id=STRATEGY_ID))
    assert list(decision.events) == [StrategyArchived(strategy_id=STRATEGY_ID, owner_id=1, archived_at=FIXED_NOW)]
    state = strategy(StrategyCreatedFactory(), *decision.events)
    assert state.archived and state.name == "BTC/ETH momentum"


# --- signals: accepted -------------------------------------------------------------------------------
def test_an_accepted_signal_places_the_trade_with_the_strategy_id() -> None:
    cmd = SignalFactory(confidence=Decimal("0.9"), client_trade_id="s-1")
    decision = decide_signal(funded("100000"), cmd)
    trade, accepted = decision.events
    expected = decide(execute_trade, funded("100000"), ExecuteTradeFactory(
        trade_id=cmd.trade_id, amount=cmd.amount, price=cmd.price, client_trade_id="s-1"))
    assert trade == dataclasses.replace(expected[0], strategy_id=STRATEGY_ID)
    assert accepted == TradeSignalAccepted(
        signal_id=cmd.signal_id, strategy_id=STRATEGY_ID, user_id=1, trade_id=cmd.trade_id, pair="BTC/USD",
        side="buy", amount=Decimal("0.02"), price=Decimal("50000"), confidence=Decimal("0.9"),
        client_trade_id="s-1", decided_at=FIXED_NOW)
    assert decision.result["outcome"] == "accepted" and decision.result["reason"] is None
    assert decision.result["notional"] == Decimal("1000.000000000000000000")


def test_an_accepted_signal_also_records_the_portfolio_impact() -> None:
    profiles = {**risk_profiles(), "moderate": RiskLimits(max_notional_usd=Decimal(5000), max_portfolio_share=Decimal(1),
                                                         min_confidence=Decimal(0))}
    decision = decide_signal(funded("20000"), SignalFactory(amount=Decimal("0.1")), signal_context(profiles=profiles))
    assert [type(e) for e in decision.events] == [TradeExecuted, PortfolioImpacted, TradeSignalAccepted]
    assert decision.result["portfolio_impacted"] is True


def test_a_signal_without_confidence_is_not_held_to_the_minimum() -> None:
    assert decide_signal(funded("100000"), SignalFactory(confidence=None)).result["outcome"] == "accepted"


# --- signals: rejected (recorded) ---------------------------------------------------------------------
GENEROUS = RiskLimits(max_notional_usd=Decimal(10**9), max_portfolio_share=Decimal(1), min_confidence=Decimal(0))


@pytest.mark.parametrize(("cash", "signal", "strategy_rules", "profile", "reason"), [
    ("100000", {"pair": "SOL/USD", "price": Decimal(100), "amount": Decimal(1)}, None, None, "pair_not_allowed"),
    ("100000", {"side": "sell"}, {"allowed_sides": ("buy",)}, None, "side_not_allowed"),
    ("100000", {"amount": Decimal("0.100001")}, None, None, "max_notional_exceeded"),  # 5,000.05 > 5,000
    ("100000", {"amount": Decimal("0.021")}, None, "conservative", "max_notional_exceeded"),  # 1,050 > 1,000
    ("10000", {"amount": Decimal("0.021")}, None, None, "max_portfolio_share_exceeded"),  # 1,050 > 10% of 10,000
    ("100000", {"amount": Decimal("0.002")}, {"max_portfolio_share": Decimal("0.0005")}, None,
     "max_portfolio_share_exceeded"),  # 100 > 0.05% of 100,000
    ("0", {}, None, None, "max_portfolio_share_exceeded"),  # nothing to take a share of
    ("100000", {"confidence": Decimal("0.49")}, None, None, "confidence_too_low"),
    ("100000", {"confidence": Decimal("0.79")}, None, "conservative", "confidence_too_low"),
])
def test_signals_breaking_a_rule_are_rejected_with_the_reason(cash: str, signal: dict, strategy_rules: dict | None,
                                                             profile: str | None, reason: str) -> None:
    created = StrategyCreatedFactory(rules=rules(**(strategy_rules or {})), risk_profile=profile or "moderate")
    cmd = SignalFactory(**signal)
    given = funded(cash) if cash != "0" else []
    decision = decide_signal(given, cmd, signal_context([created]))
    [rejected] = decision.events
    assert isinstance(rejected, TradeSignalRejected) and rejected.reason == reason
    assert rejected.signal_id == cmd.signal_id and rejected.detail
    assert decision.result["outcome"] == "rejected" and decision.result["reason"] == reason
    assert decision.result["trade_id"] is None


@pytest.mark.parametrize(("cash", "signal", "reason"), [
    ("1000", {}, "insufficient_funds"),  # 1,000 + 1 fee
    ("100000", {"price": Decimal("60000")}, "price_out_of_range"),
    ("100000", {"side": "sell"}, "insufficient_position"),
    ("100000", {"amount": Decimal("0.0001")}, "amount_too_small"),
    ("300000", {"amount": Decimal("2.1")}, "position_limit_exceeded"),
])
def test_signals_whose_trade_would_be_refused_are_rejected_with_its_code(cash: str, signal: dict,
                                                                        reason: str) -> None:
    ctx = signal_context([StrategyCreatedFactory(rules=rules(max_notional_usd=None))],
                         profiles={"moderate": GENEROUS})
    decision = decide_signal(funded(cash), SignalFactory(**signal), ctx)
    [rejected] = decision.events
    assert isinstance(rejected, TradeSignalRejected) and rejected.reason == reason
    assert all(isinstance(v, str) for v in rejected.context.values()), rejected.context


def test_a_rejection_records_the_figures_behind_it() -> None:
    [rejected] = decide_signal(funded("100000"), SignalFactory(amount=Decimal("0.2"))).events
    assert rejected.context == {"notional": "10000.000000000000000000", "max_notional_usd": "5000"}
    assert rejected.detail.startswith("The trade's notional is above")


def test_the_strategy_rules_are_checked_before_the_trade() -> None:
    [rejected] = decide_signal([], SignalFactory(pair="SOL/USD", price=Decimal(100), amount=Decimal(1))).events
    assert rejected.reason == "pair_not_allowed"  # not insufficient_funds


def test_the_portfolio_fold_ignores_signal_events() -> None:
    [rejected] = decide_signal(funded("100000"), SignalFactory(pair="SOL/USD")).events
    assert PORTFOLIO.fold([*funded("100000"), rejected]) == PORTFOLIO.fold(funded("100000"))


# --- signals: errors that store nothing -------------------------------------------------------------
@pytest.mark.parametrize(("strategy_events", "actor", "error"), [
    (None, None, StrategyNotFound),
    ([StrategyCreatedFactory(owner_id=2)], None, StrategyNotFound),
    ([StrategyCreatedFactory(owner_id=2)], STAFF, NotStrategyOwner),
    (archived(), None, StrategyIsArchived),
])
def test_a_signal_needs_your_own_active_strategy(strategy_events: list | None, actor: Actor | None,
                                                 error: type[DomainError]) -> None:
    lookups = {"strategy": None} if strategy_events is None else {}
    ctx = signal_context(strategy_events or (), actor=actor or Actor(user_id=1), **lookups)
    cmd = SignalFactory(user_id=actor.user_id if actor else 1)
    with pytest.raises(error):
        decide_signal(funded("100000", user_id=cmd.user_id), cmd, ctx)


@pytest.mark.parametrize(("signal", "error"), [
    ({"amount": Decimal(0)}, AmountNotPositive),
    ({"price": Decimal("-1")}, AmountNotPositive),
    ({"pair": "DOGE/USD", "amount": Decimal(100), "price": Decimal("0.2")}, MarketUnavailable),
])
def test_input_and_market_errors_are_errors_not_rejections(signal: dict, error: type[DomainError]) -> None:
    ctx = signal_context([StrategyCreatedFactory(rules=rules(allowed_pairs=("BTC/USD", "DOGE/USD")))])
    with pytest.raises(error):
        decide_signal(funded("100000"), SignalFactory(**signal), ctx)


def test_a_reused_client_trade_id_is_a_conflict_not_a_rejection() -> None:
    given = [*funded("100000"), *decide_signal(funded("100000"), SignalFactory(client_trade_id="x")).events]
    with pytest.raises(DuplicateClientTradeId):
        decide_signal(given, SignalFactory(client_trade_id="x"))


def test_a_rejected_signal_leaves_its_client_trade_id_free() -> None:
    rejected = decide_signal(funded("100000"), SignalFactory(client_trade_id="x", pair="SOL/USD")).events
    again = decide_signal([*funded("100000"), *rejected], SignalFactory(client_trade_id="x"))
    assert again.result["outcome"] == "accepted"


# --- authorisation before If-Match, profiles, stored events --------------------------------------
def test_owner_check_runs_on_the_stream_before_the_version_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import trading.strategy_commands as commands

    monkeypatch.setattr(commands, "read_stream", lambda stream: [StrategyCreatedFactory(owner_id=1)])
    strategy_owner_only(UpdateStrategy(strategy_id=STRATEGY_ID, name="x"), Actor(user_id=1))
    with pytest.raises(StrategyNotFound):
        strategy_owner_only(UpdateStrategy(strategy_id=STRATEGY_ID, name="x"), OTHER)


def test_risk_profiles_have_defaults_and_follow_settings(settings: object) -> None:
    assert risk_profiles()["conservative"] == RiskLimits(
        max_notional_usd=Decimal(1000), max_portfolio_share=Decimal("0.02"), min_confidence=Decimal("0.8"))
    settings.TRADING_RISK_PROFILES = {"conservative": {"max_notional_usd": "500"}}  # type: ignore[attr-defined]
    limits = risk_profiles()["conservative"]
    assert limits.max_notional_usd == Decimal(500) and limits.max_portfolio_share == Decimal("0.02")


def test_trade_executed_stored_before_strategies_still_loads() -> None:
    [trade] = decide(execute_trade, funded("100000"), ExecuteTradeFactory())
    data = trade.to_data()
    del data["strategy_id"]
    assert decode_event("trading.TradeExecuted", 1, data) == trade
    assert trade.strategy_id is None
