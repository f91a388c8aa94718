"""HTTP API of the market: thin views that validate parameters and ask the query bus."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cqrs_core.api.fields import MoneyField
from cqrs_core.api.queries import QueryViewMixin, query_actor, min_position_from, render_result
from cqrs_core.api.schema import problem_responses
from cqrs_core.api.serializers import StrictSerializer
from cqrs_core.queries import query_bus

from .analytics import SORTS, WINDOWS
from .queries import GetCandles, GetLatestPrice, GetTopCoins, ListPairs
from .timeframes import TIMEFRAMES

_MIN_POSITION_HELP = "Wait (bounded) until the market read model reflects this event position."
_FRESHNESS = ("Answers are `{data, position, stale}`: `position` is the event position the read model "
              "reflects (also `X-Read-Position`).")


class QueryParams(StrictSerializer):
    """Query-string parameters: unknown ones are a 400, like unknown body fields."""

    min_position = serializers.IntegerField(min_value=0, required=False, help_text=_MIN_POSITION_HELP)


def _params(serializer: type[StrictSerializer], request: Request) -> dict[str, Any]:
    data = serializer(data=request.query_params)
    data.is_valid(raise_exception=True)
    return {k: v for k, v in data.validated_data.items() if k != "min_position"}


def _envelope(name: str, data: Any) -> serializers.Serializer:  # type: ignore[type-arg]
    from drf_spectacular.utils import inline_serializer

    return inline_serializer(name, {"data": data, "position": serializers.IntegerField(),
                                    "stale": serializers.BooleanField()})


# --- top coins ---------------------------------------------------------------------------------
class TopCoinsParams(QueryParams):
    sort = serializers.ChoiceField(choices=SORTS, default="volume",
                                   help_text="volume: USD (quote) volume; price_change: % from the window's first "
                                             "open to its last close; volatility: Parkinson high-low, % per hour.")
    order = serializers.ChoiceField(choices=("desc", "asc"), default="desc")
    window = serializers.ChoiceField(choices=tuple(WINDOWS), default="24h",
                                     help_text="Hours ending at the latest recorded hour (`as_of`).")
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    min_volume = MoneyField(min_value=Decimal(0), default=Decimal(0),
                            help_text="Minimum USD (quote) volume over the window.")
    include_stablecoins = serializers.BooleanField(default=False)


class CoinSerializer(serializers.Serializer):  # type: ignore[type-arg]
    pair = serializers.CharField()
    base = serializers.CharField()
    is_stablecoin = serializers.BooleanField()
    last_price = MoneyField()
    open_price = MoneyField()
    high = MoneyField()
    low = MoneyField()
    volume = MoneyField(help_text="Base-currency volume over the window.")
    quote_volume = MoneyField(help_text="Sum of volume x close per candle, in USD, to 8 places.")
    price_change_pct = MoneyField()
    volatility_pct = MoneyField()
    hours = serializers.IntegerField(help_text="Hours of the window with candles.")


class TopCoinsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    as_of = serializers.DateTimeField(allow_null=True, help_text="The window's last hour: the latest recorded one.")
    window_start = serializers.DateTimeField(required=False)
    window = serializers.CharField()
    sort = serializers.CharField()
    results = CoinSerializer(many=True)


_TOP_EXAMPLE = {"data": {"as_of": "2025-12-31T23:00:00+00:00", "window_start": "2025-12-31T00:00:00+00:00", "window": "24h",
                         "sort": "volume", "results": [{
                             "pair": "BTC/USD", "base": "BTC", "is_stablecoin": False, "last_price": "64210.55",
                             "open_price": "63890.12", "high": "64502.00", "low": "63411.70", "volume": "14980.1234",
                             "quote_volume": "960112345.12345678", "price_change_pct": "0.5015",
                             "volatility_pct": "0.4127", "hours": 24}]},
                "position": 42, "stale": False}


class TopCoinsApi(QueryViewMixin, APIView):
    """Top pairs over a window, served from hourly buckets (at most 168 rows per pair)."""

    @extend_schema(
        operation_id="market_top_coins", parameters=[TopCoinsParams],
        description="Ranks pairs by USD volume, price change or volatility over `1h`, `24h` or `7d`. Stablecoins "
                    "are left out unless `include_stablecoins=true`. " + _FRESHNESS,
        responses={200: _envelope("TopCoinsResponse", TopCoinsSerializer()), **problem_responses(400, 401)},
        examples=[OpenApiExample("Top by volume", value=_TOP_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        params = _params(TopCoinsParams, request)
        descending = params.pop("order") == "desc"
        return self.answer(request, GetTopCoins(descending=descending, **params))


# --- candles -----------------------------------------------------------------------------------
class CandlesParams(QueryParams):
    pair = serializers.CharField(help_text='"BTC/USD" (or "BTC-USD"); unknown pairs are 400 `unknown_pair`.')
    timeframe = serializers.ChoiceField(choices=sorted(TIMEFRAMES), required=False)
    start = serializers.DateTimeField(required=False, help_text="Candles opening at or after this time.")
    end = serializers.DateTimeField(required=False, help_text="Candles opening before this time.")
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    offset = serializers.IntegerField(min_value=0, default=0)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("start") and attrs.get("end") and attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"end": ["Must be after start."]})
        return attrs


class CandleSerializer(serializers.Serializer):  # type: ignore[type-arg]
    timeframe = serializers.CharField()
    open_time = serializers.DateTimeField()
    open = MoneyField()
    high = MoneyField()
    low = MoneyField()
    close = MoneyField()
    volume = MoneyField(help_text="Base-currency volume.")


class CandlePageSerializer(serializers.Serializer):  # type: ignore[type-arg]
    pair = serializers.CharField()
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CandleSerializer(many=True)


_CANDLES_EXAMPLE = {"data": {"pair": "BTC/USD", "count": 168, "next": "https://host/api/market/candles/?pair=BTC%2FUSD"
                                                                       "&limit=1&offset=1", "previous": None,
                             "results": [{"timeframe": "1h", "open_time": "2025-12-25T00:00:00+00:00", "open": "64000",
                                          "high": "64210.13", "low": "63850.02", "close": "64102.77",
                                          "volume": "624.5512"}]},
                    "position": 42, "stale": False}


class CandlesApi(QueryViewMixin, APIView):
    """A pair's candles, oldest first, filtered by time range, paginated by limit and offset."""

    @extend_schema(
        operation_id="market_candles", parameters=[CandlesParams],
        description="Candles of one pair with `start <= open_time < end`. " + _FRESHNESS,
        responses={200: _envelope("CandlePageResponse", CandlePageSerializer()), **problem_responses(400, 401)},
        examples=[OpenApiExample("One page", value=_CANDLES_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        params = _params(CandlesParams, request)
        result = query_bus.ask(GetCandles(**params), actor=query_actor(request),
                               min_position=min_position_from(request))
        response = render_result(result)
        page = response.data["data"]
        limit, offset = params["limit"], params["offset"]
        page["next"] = self._link(request, limit, offset + limit) if offset + limit < page["count"] else None
        page["previous"] = self._link(request, limit, max(0, offset - limit)) if offset > 0 else None
        return response

    def _link(self, request: Request, limit: int, offset: int) -> str:
        query = request.query_params.copy()
        query["limit"], query["offset"] = str(limit), str(offset)
        return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


# --- pairs and prices --------------------------------------------------------------------------
class PairSerializer(serializers.Serializer):  # type: ignore[type-arg]
    pair = serializers.CharField()
    base = serializers.CharField()
    quote = serializers.CharField()
    is_stablecoin = serializers.BooleanField()
    price = MoneyField(allow_null=True, help_text="Latest close; null before the first candle.")


class PairsApi(QueryViewMixin, APIView):
    """Every pair the market knows, with its latest price."""

    @extend_schema(operation_id="market_pairs", parameters=[QueryParams],
                   responses={200: _envelope("PairListResponse", PairSerializer(many=True)),
                              **problem_responses(400, 401)})
    def get(self, request: Request) -> Response:
        _params(QueryParams, request)
        return self.answer(request, ListPairs())


class LatestPriceSerializer(serializers.Serializer):  # type: ignore[type-arg]
    pair = serializers.CharField()
    price = MoneyField(allow_null=True)
    open_time = serializers.DateTimeField(allow_null=True, help_text="Open time of the candle whose close it is.")


class LatestPriceApi(QueryViewMixin, APIView):
    """The latest price of one pair."""

    @extend_schema(
        operation_id="market_latest_price", parameters=[
            QueryParams, OpenApiParameter("pair", OpenApiTypes.STR, OpenApiParameter.PATH,
                                          description='"BTC-USD" (a slash cannot sit in a path).')],
        responses={200: _envelope("LatestPriceResponse", LatestPriceSerializer()), **problem_responses(400, 401)},
        examples=[OpenApiExample("BTC", response_only=True, value={
            "data": {"pair": "BTC/USD", "price": "64102.77", "open_time": "2025-12-31T23:00:00+00:00"},
            "position": 42, "stale": False})],
    )
    def get(self, request: Request, pair: str) -> Response:
        _params(QueryParams, request)
        return self.answer(request, GetLatestPrice(pair=pair))
