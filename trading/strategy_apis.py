"""HTTP API of trading strategies: create, list, read, update, archive, and send trade signals."""
from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from cqrs_core.api.commands import CommandApiView, etag
from cqrs_core.api.fields import MoneyField
from cqrs_core.api.queries import QueryViewMixin
from cqrs_core.api.schema import CommandResultSerializer, command_schema, problem_responses
from cqrs_core.api.serializers import CommandInputSerializer, StrictSerializer
from portfolio.apis import MIN_POSITION

from .apis import PageSerializer, ThrottleCommandsOnly, listed_user
from .events import BUY, SELL, StrategyRules
from .models import Strategy, StrategySignal
from .strategies import MAX_NAME_LENGTH, RISK_PROFILES
from .strategy_commands import ArchiveStrategy, CreateStrategy, ExecuteStrategySignal, UpdateStrategy
from .strategy_queries import GetStrategy, ListStrategies, ListStrategySignals

RULES_EXAMPLE = {"allowed_pairs": ["BTC/USD", "ETH/USD"], "allowed_sides": ["buy", "sell"],
                 "max_notional_usd": "5000", "max_portfolio_share": "0.1"}
SIGNAL_EXAMPLE = {"pair": "BTC/USD", "side": "buy", "amount": "0.02", "price": "50000", "confidence": "0.9"}
_RESULT = {"command_id": "6f1c0a8e-2f47-4b0e-9a51-3c2d8d0b7e11", "stream_version": 7}
_IDS = {"signal_id": "0b8f6c1e-3d2a-4f5b-8c7d-9e0f1a2b3c4d", "strategy_id": "a3e1c2d4-5b6f-4a7e-8d9c-0b1a2c3d4e5f"}


class StrategyRulesInputSerializer(StrictSerializer):
    """A strategy's rules; the domain checks them (``invalid_strategy_rules``, ``unknown_pair``)."""

    allowed_pairs = serializers.ListField(child=serializers.CharField(max_length=24), max_length=100,
                                         help_text="One or more distinct known USD pairs, such as BTC/USD.")
    allowed_sides = serializers.ListField(child=serializers.CharField(max_length=8), max_length=2,
                                          required=False, help_text='"buy", "sell" or both (the default).')
    max_notional_usd = MoneyField(required=False, allow_null=True,
                                  help_text="USD cap of one trade's notional; at least the minimum trade size.")
    max_portfolio_share = MoneyField(required=False, allow_null=True,
                                     help_text="Cap of one trade's notional as a share of the portfolio's value "
                                               "before it: above 0, at most 1.")

    def to_internal_value(self, data: Any) -> StrategyRules:
        values = super().to_internal_value(data)
        return StrategyRules(allowed_pairs=tuple(values["allowed_pairs"]),
                             allowed_sides=tuple(values.get("allowed_sides", (BUY, SELL))),
                             max_notional_usd=values.get("max_notional_usd"),
                             max_portfolio_share=values.get("max_portfolio_share"))


class CreateStrategyInputSerializer(CommandInputSerializer):
    name = serializers.CharField(max_length=MAX_NAME_LENGTH)
    rules = StrategyRulesInputSerializer()
    risk_profile = serializers.ChoiceField(RISK_PROFILES, help_text="Adds the profile's configured caps "
                                           "(TRADING_RISK_PROFILES) and minimum confidence.")


class UpdateStrategyInputSerializer(CommandInputSerializer):
    """Give any of the three; ``rules`` replaces the rules as a whole."""

    name = serializers.CharField(max_length=MAX_NAME_LENGTH, required=False)
    rules = StrategyRulesInputSerializer(required=False)
    risk_profile = serializers.ChoiceField(RISK_PROFILES, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not {"name", "rules", "risk_profile"} & set(attrs):
            raise serializers.ValidationError("Give name, rules or risk_profile.", code="nothing_to_update")
        return attrs


class SignalInputSerializer(CommandInputSerializer):
    pair = serializers.CharField(max_length=24, help_text="Such as BTC/USD.")
    side = serializers.ChoiceField([BUY, SELL])
    amount = MoneyField(help_text="Quantity of the base asset.")
    price = MoneyField(help_text="USD per unit.")
    confidence = MoneyField(required=False, min_value=0, max_value=1,
                            help_text="0 to 1; below the risk profile's minimum the signal is rejected.")
    client_trade_id = serializers.CharField(max_length=64, required=False,
                                            help_text="Names the trade the signal places; unique per portfolio.")


class StrategyResultSerializer(CommandResultSerializer):
    strategy_id = serializers.UUIDField()
    status = serializers.ChoiceField(Strategy.Status.choices)


class SignalResultSerializer(CommandResultSerializer):
    signal_id = serializers.UUIDField()
    strategy_id = serializers.UUIDField()
    outcome = serializers.ChoiceField(StrategySignal.Outcome.choices)
    trade_id = serializers.UUIDField(allow_null=True, help_text="The trade placed; null when rejected.")
    notional = serializers.CharField(allow_null=True)
    fee = serializers.CharField(allow_null=True)
    realised_pnl = serializers.CharField(allow_null=True)
    portfolio_impacted = serializers.BooleanField()
    reason = serializers.CharField(allow_null=True, help_text="Rejected: a stable code such as pair_not_allowed, "
                                   "max_notional_exceeded, max_portfolio_share_exceeded, confidence_too_low, "
                                   "side_not_allowed, insufficient_funds, price_out_of_range.")
    detail = serializers.CharField(allow_null=True)
    context = serializers.DictField(help_text="The figures behind a rejection, money as strings.")


class StrategyFilterSerializer(PageSerializer):
    status = serializers.ChoiceField(Strategy.Status.choices, required=False)


class SignalFilterSerializer(PageSerializer):
    outcome = serializers.ChoiceField(StrategySignal.Outcome.choices, required=False)


class StrategiesApi(ThrottleCommandsOnly, QueryViewMixin, CommandApiView):
    """``POST``: create a strategy. ``GET``: your strategies, newest first (staff: all, or ``?user_id=``)."""

    InputSerializer = CreateStrategyInputSerializer
    success_status = 201

    @command_schema(operation_id="api_trading_strategies_create", request=CreateStrategyInputSerializer,
                    response=StrategyResultSerializer, status=201, errors=(409,), examples=[
                        OpenApiExample("moderate BTC and ETH", request_only=True, value={
                            "name": "BTC/ETH momentum", "rules": RULES_EXAMPLE, "risk_profile": "moderate"}),
                        OpenApiExample("created", response_only=True, status_codes=["201"], value={
                            "strategy_id": _IDS["strategy_id"], "status": "active", **_RESULT, "position": 42,
                            "stream_version": 1}),
                        OpenApiExample("invalid_strategy_rules", response_only=True, status_codes=["400"], value={
                            "type": "urn:ledgerline:problem:invalid_strategy_rules", "code": "invalid_strategy_rules",
                            "title": "Invalid request", "status": 400, "retryable": False,
                            "detail": "max_portfolio_share must be above 0 and at most 1.",
                            "field": "max_portfolio_share"}),
                    ])
    def post(self, request: Request) -> Response:
        data = self.validated_input(request)
        strategy_id = self.new_id(request, "strategy")
        return self.execute(request, CreateStrategy(strategy_id=strategy_id, owner_id=request.user.pk, **data),
                            location=f"{request.path}{strategy_id}/")

    @extend_schema(operation_id="api_trading_strategies_list", parameters=[StrategyFilterSerializer, MIN_POSITION],
                   responses={200: OpenApiTypes.OBJECT, **problem_responses(400, 401, 404)}, examples=[
                       OpenApiExample("one page", response_only=True, value={"data": {
                           "count": 1, "limit": 50, "offset": 0, "results": [{
                               "strategy_id": _IDS["strategy_id"], "owner_id": 3, "name": "BTC/ETH momentum",
                               "rules": RULES_EXAMPLE, "risk_profile": "moderate", "status": "active",
                               "signals_accepted": 1, "signals_rejected": 1, "version": 1, "position": 42}]},
                           "position": 46, "stale": False})])
    def get(self, request: Request) -> Response:
        filters = StrategyFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return self.answer(request, ListStrategies(user_id=listed_user(request), **filters.validated_data))


class StrategyDetailApi(ThrottleCommandsOnly, QueryViewMixin, CommandApiView):
    """One strategy with its trades, signals and P&L; ``PATCH`` updates it, ``DELETE`` archives it (owner only)."""

    InputSerializer = UpdateStrategyInputSerializer

    @extend_schema(operation_id="api_trading_strategy_retrieve", parameters=[MIN_POSITION],
                   responses={200: OpenApiTypes.OBJECT, **problem_responses(401, 404)}, examples=[
                       OpenApiExample("a strategy", response_only=True, value={"data": {
                           "strategy_id": _IDS["strategy_id"], "name": "BTC/ETH momentum", "rules": RULES_EXAMPLE,
                           "risk_profile": "moderate", "status": "active", "version": 1,
                           "signals": {"accepted": 1, "rejected": 1, "rejected_by_reason": {"pair_not_allowed": 1},
                                       "latest": []},
                           "pnl": {"realised_pnl": "0", "unrealised_pnl": "20.5", "fees": "1", "net_pnl": "19.5",
                                   "assets": []},
                           "trades": {"count": 1, "latest": []}}, "position": 44, "stale": False})])
    def get(self, request: Request, strategy_id: UUID) -> Response:
        response = self.answer(request, GetStrategy(strategy_id=strategy_id))
        response["ETag"] = etag(response.data["data"]["version"])
        return response

    @command_schema(operation_id="api_trading_strategy_update", request=UpdateStrategyInputSerializer,
                    response=StrategyResultSerializer, errors=(403, 404, 409), examples=[
                        OpenApiExample("tighten the cap", request_only=True, value={
                            "rules": {**RULES_EXAMPLE, "max_notional_usd": "2000"}}),
                        OpenApiExample("strategy_archived", response_only=True, status_codes=["409"], value={
                            "type": "urn:ledgerline:problem:strategy_archived", "code": "strategy_archived",
                            "title": "Conflict", "status": 409, "retryable": False,
                            "detail": "The strategy is archived: it takes no updates and no signals."}),
                    ])
    def patch(self, request: Request, strategy_id: UUID) -> Response:
        data = self.validated_input(request)
        return self.execute(request, UpdateStrategy(strategy_id=strategy_id, **data))

    @command_schema(operation_id="api_trading_strategy_archive", request=None, response=StrategyResultSerializer,
                    errors=(403, 404, 409), examples=[OpenApiExample("archived", response_only=True, value={
                        "strategy_id": _IDS["strategy_id"], "status": "archived", **_RESULT, "position": 51,
                        "stream_version": 3})])
    def delete(self, request: Request, strategy_id: UUID) -> Response:
        return self.execute(request, ArchiveStrategy(strategy_id=strategy_id))


class StrategySignalsApi(ThrottleCommandsOnly, QueryViewMixin, CommandApiView):
    """``POST``: a trade signal for your strategy, accepted (the trade placed) or rejected with its reason;
    both are recorded (``201``). ``GET``: the strategy's signals, newest first."""

    InputSerializer = SignalInputSerializer
    success_status = 201

    @command_schema(operation_id="api_trading_strategy_signals_create", request=SignalInputSerializer,
                    response=SignalResultSerializer, status=201, errors=(403, 404, 409, 503), examples=[
                        OpenApiExample("buy 0.02 BTC", request_only=True, value=SIGNAL_EXAMPLE),
                        OpenApiExample("accepted", response_only=True, status_codes=["201"], value={
                            **_IDS, "outcome": "accepted", "trade_id": "5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716",
                            "notional": "1000.000000000000000000", "fee": "1.000000000000000000",
                            "realised_pnl": "0", "portfolio_impacted": False, "reason": None, "detail": None,
                            "context": {}, **_RESULT, "position": 45}),
                        OpenApiExample("rejected", response_only=True, status_codes=["201"], value={
                            **_IDS, "outcome": "rejected", "trade_id": None, "notional": None, "fee": None,
                            "realised_pnl": None, "portfolio_impacted": False, "reason": "max_notional_exceeded",
                            "detail": "The trade's notional is above the strategy's (or its risk profile's) "
                                      "maximum per trade.",
                            "context": {"notional": "6000.000000000000000000", "max_notional_usd": "5000"},
                            **_RESULT, "position": 46}),
                    ])
    def post(self, request: Request, strategy_id: UUID) -> Response:
        data = self.validated_input(request)
        command = ExecuteStrategySignal(user_id=request.user.pk, strategy_id=strategy_id,
                                        signal_id=self.new_id(request, "signal"),
                                        trade_id=self.new_id(request, "trade"), **data)
        return self.execute(request, command)

    @extend_schema(operation_id="api_trading_strategy_signals_list", parameters=[SignalFilterSerializer, MIN_POSITION],
                   responses={200: OpenApiTypes.OBJECT, **problem_responses(400, 401, 404)}, examples=[
                       OpenApiExample("a rejected signal", response_only=True, value={"data": {
                           "count": 1, "limit": 50, "offset": 0, "results": [{
                               **_IDS, "outcome": "rejected", "reason": "pair_not_allowed",
                               "detail": "The strategy does not trade this pair.",
                               "context": {"pair": "SOL/USD", "allowed_pairs": ["BTC/USD", "ETH/USD"]},
                               "trade_id": None, "pair": "SOL/USD", "side": "buy", "amount": "5",
                               "price": "100", "confidence": None, "client_trade_id": None, "position": 46}]},
                           "position": 46, "stale": False})])
    def get(self, request: Request, strategy_id: UUID) -> Response:
        filters = SignalFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return self.answer(request, ListStrategySignals(strategy_id=strategy_id, **filters.validated_data))
