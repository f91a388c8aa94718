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
from .queries import GetPortfolio

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


class PortfolioApi(QueryViewMixin, APIView):
    """Your portfolio: cash, positions at latest prices, P&L, total value and allocation (staff: ``?user_id=``)."""

    @extend_schema(parameters=[MIN_POSITION, OpenApiParameter("user_id", OpenApiTypes.INT)],
                   responses={200: OpenApiTypes.OBJECT, **problem_responses(400, 401, 404)})
    def get(self, request: Request) -> Response:
        user_id = user_id_param(request)
        return self.answer(request, GetPortfolio(user_id=request.user.pk if user_id is None else user_id))
