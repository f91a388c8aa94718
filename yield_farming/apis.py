"""HTTP API of yield farming: execute a strategy, follow it, list positions and the protocol catalogue."""
from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field, inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cqrs_core.api.commands import CommandApiView
from cqrs_core.api.errors import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX
from cqrs_core.api.fields import MoneyField
from cqrs_core.api.queries import QueryViewMixin
from cqrs_core.api.schema import COMMAND_ERRORS, CommandResultSerializer, ProblemSerializer, command_schema, problem_responses
from cqrs_core.api.serializers import CommandInputSerializer, StrictSerializer
from portfolio.apis import MIN_POSITION

from .catalogue import MAX_RISK_SCORE, UpdateProtocol
from .commands import ANY, ExecuteYieldStrategy
from .queries import GetYieldStrategy, ListProtocols, ListYieldPositions
from .rules import TOLERANCES

MAX_PAGE = 200
MAX_TARGETS = 20


def problem_examples(status: int, *examples: tuple[str, str]) -> dict[tuple[int, str], OpenApiResponse]:
    """A problem response of ``status`` with one example per ``(code, detail)``."""
    values = [OpenApiExample(code, status_codes=[str(status)], value={
        "type": PROBLEM_TYPE_PREFIX + code, "code": code, "title": code.replace("_", " ").capitalize(),
        "status": status, "detail": detail, "retryable": False}) for code, detail in examples]
    return {(status, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description=examples[0][1],
                                                            examples=values)}


def command_responses(status: int, result: Any, own: dict[tuple[int, str], OpenApiResponse]) -> dict[Any, Any]:
    """A command's responses: its result, the problems every command may answer, and its own coded ones."""
    return {status: result, **problem_responses(*COMMAND_ERRORS), **own}


@extend_schema_field({"oneOf": [{"type": "string", "enum": [ANY]},
                                {"type": "array", "items": {"type": "string"}, "minItems": 1,
                                 "maxItems": MAX_TARGETS}]})
class ProtocolsField(serializers.Field):  # type: ignore[type-arg]
    """``"any"`` (the whole catalogue) or a list of protocol slugs, as a tuple."""

    default_error_messages = {"invalid": f'Give "{ANY}" or a list of 1 to {MAX_TARGETS} protocol slugs.'}

    def to_internal_value(self, data: Any) -> tuple[str, ...]:
        if data == ANY:
            return (ANY,)
        if (not isinstance(data, list) or not 1 <= len(data) <= MAX_TARGETS
                or not all(isinstance(s, str) and 0 < len(s) <= 80 for s in data)):
            self.fail("invalid")
        return tuple(dict.fromkeys(data))

    def to_representation(self, value: Any) -> Any:
        return list(value)


class YieldStrategyResultSerializer(CommandResultSerializer):
    strategy_id = serializers.UUIDField()
    status = serializers.CharField(help_text='"requested": the saga now analyses, assesses and executes.')
    reserved = serializers.CharField(help_text="USD moved from cash to reserved, an exact decimal string.")
    cash = serializers.CharField(help_text="Spendable cash after the reservation.")


class StrategyInput(CommandInputSerializer):
    """What to farm: targets, USD amount and risk tolerance."""

    protocols = ProtocolsField(help_text=f'Target protocol slugs, or "{ANY}" for the whole catalogue.')
    amount = MoneyField(help_text="USD to farm, an exact decimal (string recommended); at least the minimum.")
    risk_tolerance = serializers.ChoiceField(TOLERANCES)


class StrategiesApi(CommandApiView):
    """Execute a yield strategy: reserve the amount now; a saga places it (poll the ``Location``)."""

    InputSerializer = StrategyInput
    success_status = 202

    @extend_schema(responses=command_responses(202, YieldStrategyResultSerializer, {
        **problem_examples(400, ("amount_too_low", "The strategy amount is below the minimum (USD)."),
                           ("unknown_protocol", "A target protocol is not in the catalogue."),
                           ("validation_failed", "The request has invalid fields.")),
        **problem_examples(409, ("insufficient_funds", "Not enough cash in the portfolio."))}))
    @command_schema(
        request=StrategyInput, response=YieldStrategyResultSerializer, status=202, errors=(409,),
        examples=[OpenApiExample("Farm 5,000 USD anywhere, moderately", request_only=True,
                                 value={"protocols": ANY, "amount": "5000.00", "risk_tolerance": "moderate"}),
                  OpenApiExample("Requested", response_only=True, status_codes=["202"], value={
                      "strategy_id": "0b0e5a4c-3f57-4a43-9b8a-3c1f4f0a9d11", "status": "requested",
                      "reserved": "5000.00", "cash": "45000.00", "command_id": "7f0c2d1e-5a6b-4c3d-8e9f-0a1b2c3d4e5f",
                      "position": 1234, "stream_version": 7})],
    )
    def post(self, request: Request) -> Response:
        data = self.validated_input(request)
        strategy_id = self.new_id(request, "yield-strategy")
        return self.execute(request, ExecuteYieldStrategy(user_id=request.user.pk, strategy_id=strategy_id, **data),
                            location=f"{request.path}{strategy_id}/")




class StrategyDetailApi(QueryViewMixin, APIView):
    """A strategy you requested (staff: anyone's): status, outcome, step timeline, positions."""

    @extend_schema(parameters=[MIN_POSITION], responses={
        200: OpenApiTypes.OBJECT, **problem_responses(400, 401),
        **problem_examples(404, ("strategy_not_found", "The strategy does not exist, or is not yours."))},
        examples=[OpenApiExample("Positions opened", response_only=True, value={"data": {
            "strategy_id": "0b0e5a4c-3f57-4a43-9b8a-3c1f4f0a9d11", "status": "completed",
            "outcome": "positions_opened", "reason": "", "amount": "5000.00", "allocated": "5000.00",
            "released": "0", "reserved": "0.00", "timeline": [
                {"event": "SagaStarted", "at": "2026-11-23T10:00:00Z"},
                {"event": "StepCompleted", "step": "execute_positions", "attempt": 1, "at": "2026-11-23T10:00:01Z"},
                {"event": "SagaCompleted", "reason": "", "at": "2026-11-23T10:00:01Z"}],
            "positions": []}, "position": 1240, "stale": False})])
    def get(self, request: Request, strategy_id: UUID) -> Response:
        return self.answer(request, GetYieldStrategy(strategy_id=strategy_id))


class PositionParams(StrictSerializer):
    min_position = serializers.IntegerField(min_value=0, required=False)
    user_id = serializers.IntegerField(min_value=1, required=False, help_text="Staff: whose positions (default all).")
    strategy_id = serializers.UUIDField(required=False)
    open_only = serializers.BooleanField(default=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=10**9, default=0)


class PositionsApi(QueryViewMixin, APIView):
    """Your yield positions, newest first, with yield accrued to now (simple daily interest at the opening APY)."""

    @extend_schema(parameters=[PositionParams], responses={
        200: OpenApiTypes.OBJECT, **problem_responses(400, 401, 404)},
        examples=[OpenApiExample("One open position", response_only=True, value={"data": {
            "count": 1, "limit": 50, "offset": 0, "results": [{
                "position_id": "5c8e1f0a-2b3d-4e5f-8a9b-0c1d2e3f4a5b", "protocol": "aave-v3-usdc-ethereum",
                "principal": "2500.00", "apy": "4.20", "status": "open", "days": 30,
                "accrued_yield": "8.630136986301369863"}]}, "position": 1240, "stale": False})])
    def get(self, request: Request) -> Response:
        params = PositionParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = {k: v for k, v in params.validated_data.items() if k != "min_position"}
        user_id = data.pop("user_id", None)
        owner = user_id if request.user.is_staff else (request.user.pk if user_id is None else user_id)
        return self.answer(request, ListYieldPositions(user_id=owner, **data))


class ProtocolParams(StrictSerializer):
    min_position = serializers.IntegerField(min_value=0, required=False)
    chain = serializers.CharField(max_length=40, required=False)
    asset = serializers.CharField(max_length=20, required=False)
    audited = serializers.BooleanField(required=False, allow_null=True, default=None)
    max_risk = serializers.IntegerField(min_value=1, max_value=MAX_RISK_SCORE, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=10**9, default=0)


PROTOCOL_EXAMPLE = {"slug": "aave-v3-usdc-ethereum", "name": "Aave v3 USDC", "chain": "ethereum", "asset": "USDC",
                    "apy": "4.20", "tvl": "2150000000", "audited": True, "risk_score": 2}


class ProtocolsApi(QueryViewMixin, APIView):
    """The yield protocol catalogue by slug: APY (% a year), TVL (USD), audit status, risk score 1-10."""

    @extend_schema(parameters=[ProtocolParams], responses={200: OpenApiTypes.OBJECT, **problem_responses(400, 401)},
                   examples=[OpenApiExample("Catalogue page", response_only=True, value={"data": {
                       "count": 1, "limit": 50, "offset": 0, "results": [PROTOCOL_EXAMPLE]},
                       "position": 1200, "stale": False})])
    def get(self, request: Request) -> Response:
        params = ProtocolParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = {k: v for k, v in params.validated_data.items() if k != "min_position"}
        return self.answer(request, ListProtocols(**data))


class ProtocolUpdateInput(CommandInputSerializer):
    """The fields to change; the others keep their value (at least one is required)."""

    name = serializers.CharField(max_length=120, required=False)
    chain = serializers.CharField(max_length=40, required=False)
    asset = serializers.CharField(max_length=20, required=False)
    apy = MoneyField(required=False, help_text="Percent a year, at least 0.")
    tvl = MoneyField(required=False, help_text="USD, at least 0.")
    audited = serializers.BooleanField(required=False)
    risk_score = serializers.IntegerField(min_value=1, max_value=MAX_RISK_SCORE, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not set(attrs) - {"expected_version"}:
            raise serializers.ValidationError("Give at least one field to change.")
        return attrs


PROTOCOL_UPDATED = inline_serializer("ProtocolUpdated", {
    **{k: serializers.CharField() for k in ("slug", "name", "chain", "asset", "apy", "tvl")},
    "audited": serializers.BooleanField(), "risk_score": serializers.IntegerField(),
    "command_id": serializers.UUIDField(), "position": serializers.IntegerField(allow_null=True),
    "stream_version": serializers.IntegerField()})


class ProtocolDetailApi(CommandApiView):
    """Operators only: change a protocol's figures (403 ``operators_only`` for others)."""

    InputSerializer = ProtocolUpdateInput

    @extend_schema(responses=command_responses(200, PROTOCOL_UPDATED, {
        **problem_examples(400, ("invalid_protocol", "A protocol's figures are out of range."),
                           ("validation_failed", "The request has invalid fields.")),
        **problem_examples(403, ("operators_only", "Only operators (staff) may do this.")),
        **problem_examples(404, ("protocol_not_found", "No protocol has this slug."))}))
    @command_schema(
        request=ProtocolUpdateInput, errors=(403, 404), response=PROTOCOL_UPDATED,
        examples=[OpenApiExample("Raise the APY", request_only=True, value={"apy": "4.75"})],
    )
    def put(self, request: Request, slug: str) -> Response:
        data = self.validated_input(request)
        return self.execute(request, UpdateProtocol(slug=slug, **data))



