"""HTTP API of the portfolio context: thin views over the command and query buses."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cqrs_core.api.commands import CommandApiView
from cqrs_core.api.fields import MoneyField
from cqrs_core.api.queries import QueryViewMixin
from cqrs_core.api.schema import CommandResultSerializer, command_schema, problem_responses
from cqrs_core.api.serializers import CommandInputSerializer

from .commands import DepositFunds, SetRiskLimits, WithdrawFunds
from .queries import GetOptimizedPortfolio, GetPortfolio, GetPortfolioPerformance

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
