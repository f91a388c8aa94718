"""Market read models in the admin: candles and hourly buckets, read-only, linked to their ``market-<pair>`` stream."""
from __future__ import annotations

from django.contrib import admin

from cqrs_core.admin import ReadModelAdmin
from cqrs_core.admin.base import choices_filter

from .commands import market_stream
from .models import Candle, PairHourBucket
from .pairs import known_pairs

PairFilter = choices_filter("pair", "pair", known_pairs)


@admin.register(Candle)
class CandleAdmin(ReadModelAdmin):
    list_display = ("pair", "timeframe", "open_time", "open", "high", "low", "close", "volume", "source_event",
                    "history")
    search_fields = ("=pair",)
    list_filter = (PairFilter,)  # index market_candle_pair_time
    ordering = ("-id",)  # recording order, on the primary key (no index leads with open_time)

    def stream_of(self, obj: Candle) -> str:
        return market_stream(obj.pair)


@admin.register(PairHourBucket)
class PairHourBucketAdmin(ReadModelAdmin):
    list_display = ("pair", "hour", "open", "high", "low", "close", "volume", "quote_volume", "candles", "history")
    search_fields = ("=pair",)
    list_filter = (PairFilter, ("hour", admin.DateFieldListFilter))  # unique (pair, hour); index market_bucket_hour
    ordering = ("-hour",)

    def stream_of(self, obj: PairHourBucket) -> str:
        return market_stream(obj.pair)
