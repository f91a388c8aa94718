"""HTTP API of the portfolio context: thin views over the command and query buses."""
from __future__ import annotations

from typing import Any
from uuid import UUID

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from cqrs_core.api.commands import CommandApiView
from cqrs_core.api.fields import MoneyField
from cqrs_core.api.queries import QueryViewMixin
from cqrs_core.api.schema import CommandResultSerializer, command_schema, problem_responses
from cqrs_core.api.serializers import CommandInputSerializer

from .commands import DepositFunds, ExecuteRebalance, RebalancePortfolio, SetRiskLimits, WithdrawFunds
from .models import Rebalance
from .queries import GetOptimizedPortfolio, GetPortfolio, GetPortfolioPerformance
from .rebalance import EXECUTING, PLANNED
from .rebalance_queries import GetRebalance, ListRebalances

MIN_POSITION = OpenApiParameter("min_position", OpenApiTypes.INT, description="Wait (bounded) until the read "
                                "model reflects this event position: read your own writes.")


class CashResultSerializer(CommandResultSerializer):
    cash = serializers.CharField(help_text="Cash after the command: an exact decimal, as a string.")


class AmountInputSerializer(CommandInputSerializer):
    amount = MoneyField(help_text="USD, an exact decimal (string recommended); must be positive.")


class DepositApi(CommandApiView):
    """Deposit USD into your portfolio (opened on first use)."""

    InputSerializer = AmountInputSerializer
    success_status = 201

    @command_schema(request=AmountInputSerializer, response=CashResultSerializer, status=201)
    def post(self, request: Request) -> Response:
        data = self.validated_input(request)
        return self.execute(request, DepositFunds(user_id=request.user.pk, **data))


class WithdrawalApi(CommandApiView):
    """Withdraw USD from your portfolio; never below zero (409 ``insufficient_funds``)."""

    InputSerializer = AmountInputSerializer
    success_status = 201

    @command_schema(request=AmountInputSerializer, response=CashResultSerializer, status=201, errors=(409,))
    def post(self, request: Request) -> Response:
        data = self.validated_input(request)
        return self.execute(request, WithdrawFunds(user_id=request.user.pk, **data))


class RiskLimitsApi(CommandApiView):
    """Operators only: set a user's maximum position size in USD."""

    @extend_schema_serializer(component_name="RiskLimitsInput")
    class InputSerializer(CommandInputSerializer):
        max_position_usd = MoneyField(help_text="USD; must be positive.")

    @command_schema(request=InputSerializer, errors=(403, 404))
    def put(self, request: Request, user_id: int) -> Response:
        data = self.validated_input(request)
        return self.execute(request, SetRiskLimits(user_id=user_id, **data))


def user_id_param(request: Request) -> int | None:
    """The ``user_id`` query parameter (staff reading another's data), or None."""
    raw = request.query_params.get("user_id")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationError({"user_id": ["Must be a positive integer."]})
    return int(raw)


INCLUDE = OpenApiParameter("include", OpenApiTypes.STR, description="Comma-separated extras: ``metrics`` (the "
                           "performance figures of /api/portfolio/performance/) and/or ``history`` (hourly value "
                           "points, at most PORTFOLIO_HISTORY_MAX_POINTS, evenly spaced, the latest included).")
INCLUDABLE = ("history", "metrics")


def include_param(request: Request) -> tuple[str, ...]:
    """The ``include`` query parameter as a sorted tuple of known extras; unknown names are a 400."""
    raw = request.query_params.get("include", "")
    names = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = names - set(INCLUDABLE)
    if unknown:
        raise ValidationError({"include": [f"Unknown: {', '.join(sorted(unknown))}; use {', '.join(INCLUDABLE)}."]})
    return tuple(sorted(names))


class PortfolioApi(QueryViewMixin, APIView):
    """Your portfolio: cash, positions at latest prices, P&L, total value and allocation (staff: ``?user_id=``)."""

    @extend_schema(parameters=[MIN_POSITION, OpenApiParameter("user_id", OpenApiTypes.INT), INCLUDE],
                   responses={200: OpenApiTypes.OBJECT, **problem_responses(400, 401, 404)})
    def get(self, request: Request) -> Response:
        user_id = user_id_param(request)
        return self.answer(request, GetPortfolio(user_id=request.user.pk if user_id is None else user_id,
                                                 include=include_param(request)))


def owner_or_param(request: Request) -> int:
    """The user whose data is asked for: ``?user_id=`` (staff; others get 404), else the caller."""
    user_id = user_id_param(request)
    return request.user.pk if user_id is None else user_id


class PortfolioPerformanceApi(QueryViewMixin, APIView):
    """Your portfolio's time-weighted returns over 1d/7d/30d, annualised volatility and maximum drawdown.

    Returns exclude deposits and withdrawals (time-weighted); a window longer than the history is
    ``null``. Volatility: hourly returns of the last 30 days x sqrt(8760), ``null`` with fewer than
    two. Drawdown: deepest fall of the time-weighted index from a peak, in percent and in USD of
    market loss, with its dates. Staff: ``?user_id=``.
    """

    @extend_schema(parameters=[MIN_POSITION, OpenApiParameter("user_id", OpenApiTypes.INT)],
                   responses={200: OpenApiTypes.OBJECT, **problem_responses(400, 401, 404)})
    def get(self, request: Request) -> Response:
        return self.answer(request, GetPortfolioPerformance(user_id=owner_or_param(request)))


class OptimizedPortfolioApi(QueryViewMixin, APIView):
    """Your optimised portfolio (minimum variance and maximum Sharpe, long-only, capped per asset).

    ``200`` with ``status: ready`` when a result at most 5 minutes old reflects your latest trade
    or cash move; otherwise ``202`` with ``status: computing``, your current portfolio and an
    estimated completion time: one computation starts on a worker, and a later call returns it.
    With eager Celery (embedded mode) the first call computes inline and answers ``200``.
    """

    @extend_schema(parameters=[MIN_POSITION, OpenApiParameter("user_id", OpenApiTypes.INT)],
                   responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT,
                              **problem_responses(400, 401, 404, 503)})
    def get(self, request: Request) -> Response:
        response = self.answer(request, GetOptimizedPortfolio(user_id=owner_or_param(request)))
        if response.data["data"]["status"] == "computing":
            response.status_code = 202
            response["Location"] = request.build_absolute_uri(request.path)
            response["Retry-After"] = str(max(1, -(-response.data["data"]["estimated_duration_ms"] // 1000)))
        return response


# --- rebalancing ------------------------------------------------------------------------------
MAX_TARGETS = 50


def rebalance_url(rebalance_id: UUID) -> str:
    return reverse("portfolio-rebalance-detail", kwargs={"rebalance_id": rebalance_id})


class RebalanceResultSerializer(CommandResultSerializer):
    rebalance_id = serializers.UUIDField()
    status = serializers.ChoiceField([PLANNED, EXECUTING])
    plan = serializers.JSONField(required=False, help_text="The plan as fixed in PortfolioRebalancePlanned: "
                                 "valuations, ordered trades (sells first), skipped dust, estimated cost and time.")


class RebalanceFilterSerializer(serializers.Serializer):  # type: ignore[type-arg]
    status = serializers.ChoiceField(Rebalance.Status.values, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=10**9, default=0)


class RebalanceInputSerializer(CommandInputSerializer):
    targets = serializers.DictField(
        child=MoneyField(help_text="Percent of the portfolio's value."), allow_empty=False,
        help_text='Target allocation per asset in percent, cash as "USD", e.g. {"BTC": "50", "USD": "50"}; '
                  "must sum to 100 (within 0.1). Held assets not named get 0.")
    execute = serializers.BooleanField(default=False, help_text="Start executing the plan at once.")

    def validate_targets(self, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_TARGETS:
            raise ValidationError(f"At most {MAX_TARGETS} assets.")
        return value


class RebalanceApi(QueryViewMixin, CommandApiView):
    """``POST``: plan a rebalance of your portfolio (201), or plan and execute it with ``"execute": true``
    (202; poll the ``Location``). ``GET``: your rebalances, newest first (staff: all, or ``?user_id=``)."""

    InputSerializer = RebalanceInputSerializer

    def get_throttles(self) -> list[BaseThrottle]:
        """Throttle commands only; reads are cheap."""
        return super().get_throttles() if self.request.method == "POST" else []

    @command_schema(request=RebalanceInputSerializer, response=RebalanceResultSerializer, status=201,
                    errors=(409, 503), description="Answers 201 with the plan, or 202 when ``execute`` started it.")
    def post(self, request: Request) -> Response:
        data = self.validated_input(request)
        rebalance_id = self.new_id(request, "rebalance")
        self.success_status = 202 if data["execute"] else 201  # type: ignore[misc]  (per request)
        return self.execute(request, RebalancePortfolio(user_id=request.user.pk, rebalance_id=rebalance_id, **data),
                            location=rebalance_url(rebalance_id))

    @extend_schema(operation_id="portfolio_rebalances_list",
                   parameters=[RebalanceFilterSerializer, MIN_POSITION, OpenApiParameter("user_id", OpenApiTypes.INT)],
                   responses={200: OpenApiTypes.OBJECT, **problem_responses(400, 401, 404)})
    def get(self, request: Request) -> Response:
        filters = RebalanceFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        user_id = user_id_param(request)
        if user_id is None and not request.user.is_staff:
            user_id = request.user.pk
        return self.answer(request, ListRebalances(user_id=user_id, **filters.validated_data))


class RebalanceDetailApi(QueryViewMixin, APIView):
    """One of your rebalances with its plan and, once executing, status and timeline; another's is 404."""

    @extend_schema(parameters=[MIN_POSITION], responses={200: OpenApiTypes.OBJECT, **problem_responses(401, 404)})
    def get(self, request: Request, rebalance_id: UUID) -> Response:
        return self.answer(request, GetRebalance(rebalance_id=rebalance_id))


class RebalanceExecuteApi(CommandApiView):
    """Execute one of your planned rebalances: 202, poll the ``Location``; started already or too old is 409."""

    success_status = 202

    @command_schema(request=CommandInputSerializer, response=RebalanceResultSerializer, status=202,
                    errors=(404, 409))
    def post(self, request: Request, rebalance_id: UUID) -> Response:
        self.validated_input(request)
        return self.execute(request, ExecuteRebalance(user_id=request.user.pk, rebalance_id=rebalance_id),
                            location=rebalance_url(rebalance_id))
