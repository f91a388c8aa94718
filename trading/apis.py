"""HTTP API of the trading context: execute a trade, list and read trades."""
from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from cqrs_core.api.commands import CommandApiView
from cqrs_core.api.fields import MoneyField
from cqrs_core.api.queries import QueryViewMixin
from cqrs_core.api.schema import CommandResultSerializer, command_schema, problem_responses
from cqrs_core.api.serializers import CommandInputSerializer
from portfolio.apis import MIN_POSITION, user_id_param

from .commands import ExecuteTrade
from .events import BUY, SELL
from .queries import GetTrade, ListTrades

MAX_PAGE = 200


class TradeResultSerializer(CommandResultSerializer):
    trade_id = serializers.UUIDField()
    notional = serializers.CharField()
    fee = serializers.CharField()
    realised_pnl = serializers.CharField()
    portfolio_impacted = serializers.BooleanField()


class PageSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """``limit`` and ``offset`` of a list; subclasses add its filters."""

    limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=10**9, default=0)


class TradeFilterSerializer(PageSerializer):
    pair = serializers.CharField(required=False, max_length=24)
    side = serializers.ChoiceField([BUY, SELL], required=False)
    since = serializers.DateTimeField(required=False, help_text="Inclusive.")
    until = serializers.DateTimeField(required=False, help_text="Exclusive.")


def listed_user(request: Request) -> int | None:
    """Whose rows a list shows: the caller's, or for staff the ``user_id`` asked for (None: everyone's)."""
    user_id = user_id_param(request)
    if request.user.is_staff:
        return user_id
    return request.user.pk if user_id is None else user_id


class ExecuteTradeInputSerializer(CommandInputSerializer):
    pair = serializers.CharField(max_length=24, help_text="Such as BTC/USD.")
    side = serializers.ChoiceField([BUY, SELL])
    amount = MoneyField(help_text="Quantity of the base asset.")
    price = MoneyField(help_text="USD per unit.")
    client_trade_id = serializers.CharField(max_length=64, required=False)


class ThrottleCommandsOnly:
    """Throttle commands only; reads are cheap and cached."""

    def get_throttles(self) -> list[BaseThrottle]:
        return super().get_throttles() if self.request.method not in SAFE_METHODS else []  # type: ignore[misc]


class TradesApi(ThrottleCommandsOnly, QueryViewMixin, CommandApiView):
    """``POST``: execute a trade on your portfolio. ``GET``: your trades, newest first (staff: all)."""

    InputSerializer = ExecuteTradeInputSerializer
    success_status = 201

    @command_schema(request=ExecuteTradeInputSerializer, response=TradeResultSerializer, status=201, errors=(409, 503))
    def post(self, request: Request) -> Response:
        data = self.validated_input(request)
        trade_id = self.new_id(request, "trade")
        return self.execute(request, ExecuteTrade(user_id=request.user.pk, trade_id=trade_id, **data),
                            location=f"{request.path}{trade_id}/")

    @extend_schema(operation_id="api_trading_trades_list", parameters=[TradeFilterSerializer, MIN_POSITION],
                   responses={200: OpenApiTypes.OBJECT, **problem_responses(400, 401, 404)})
    def get(self, request: Request) -> Response:
        filters = TradeFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return self.answer(request, ListTrades(user_id=listed_user(request), **filters.validated_data))


class TradeDetailApi(QueryViewMixin, APIView):
    """One of your trades (staff: anyone's); another user's trade is 404."""

    @extend_schema(operation_id="api_trading_trade_detail", parameters=[MIN_POSITION],
                   responses={200: OpenApiTypes.OBJECT, **problem_responses(401, 404)})
    def get(self, request: Request, trade_id: UUID) -> Any:
        return self.answer(request, GetTrade(trade_id=trade_id))
