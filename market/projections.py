"""The ``market.candles`` projection: candles in, candle rows and hourly buckets out."""
from __future__ import annotations

import datetime as dt
import decimal
from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction

from cqrs_core.commands import MONEY_CONTEXT
from cqrs_core.events import Event, RecordedEvent
from cqrs_core.projections import projection
from cqrs_core.queries import invalidate

from .events import CandleData, CandlesRecorded
from .models import Candle, PairHourBucket
from .timeframes import floor_hour

CANDLES = "market.candles"
#: The scope of ``market.queries.latest_prices`` (defined here: the queries module imports this one).
PRICES_SCOPE = "market.latest_prices"


@projection(CANDLES, events=[CandlesRecorded], read_models=[PairHourBucket, Candle], batch_size=50)
def project_candles(event: Event, recorded: RecordedEvent) -> None:
    match event:
        case CandlesRecorded():
            fresh = _store_new_candles(event, recorded.position)
            if fresh:
                invalidate(PRICES_SCOPE)  # after the commit: every process's kept latest prices are stale
                transaction.on_commit(_forget_kept_prices)  # this one's at once
            with decimal.localcontext(MONEY_CONTEXT):  # volume x close needs more than 28 digits
                fold_into_buckets(event.pair, fresh)


def _forget_kept_prices() -> None:
    from .queries import forget_kept_prices  # the queries module imports this one

    forget_kept_prices()


def _store_new_candles(event: CandlesRecorded, position: int) -> list[CandleData]:
    """Insert the candles not stored yet and return them (the stream already refuses overlaps)."""
    times = [c.open_time for c in event.candles]
    stored = set(Candle.objects.filter(pair=event.pair, timeframe=event.timeframe, open_time__in=times)
                 .values_list("open_time", flat=True))
    fresh = [c for c in event.candles if c.open_time not in stored]
    Candle.objects.bulk_create([
        Candle(pair=event.pair, timeframe=event.timeframe, open_time=c.open_time, open=c.open, high=c.high,
               low=c.low, close=c.close, volume=c.volume, position=position)
        for c in fresh
    ])
    return fresh


def fold_into_buckets(pair: str, candles: Iterable[CandleData]) -> None:
    """Fold candles into their pair's hourly buckets; the result does not depend on their order."""
    by_hour: dict[dt.datetime, list[CandleData]] = defaultdict(list)
    for candle in candles:
        by_hour[floor_hour(candle.open_time)].append(candle)
    existing = {b.hour: b for b in PairHourBucket.objects.filter(pair=pair, hour__in=list(by_hour))}
    created, updated = [], []
    for hour, items in by_hour.items():
        bucket = existing.get(hour)
        for candle in items:
            bucket = _fold(bucket, pair, hour, candle)
        assert bucket is not None
        (updated if hour in existing else created).append(bucket)
    PairHourBucket.objects.bulk_create(created)
    PairHourBucket.objects.bulk_update(updated, ["open", "high", "low", "close", "volume", "quote_volume",
                                                 "candles", "first_open_time", "last_open_time"])


def _fold(bucket: PairHourBucket | None, pair: str, hour: dt.datetime, c: CandleData) -> PairHourBucket:
    if bucket is None:
        return PairHourBucket(pair=pair, hour=hour, open=c.open, high=c.high, low=c.low, close=c.close,
                              volume=c.volume, quote_volume=c.volume * c.close, candles=1,
                              first_open_time=c.open_time, last_open_time=c.open_time)
    if c.open_time < bucket.first_open_time:
        bucket.open, bucket.first_open_time = c.open, c.open_time
    if c.open_time > bucket.last_open_time:
        bucket.close, bucket.last_open_time = c.close, c.open_time
    bucket.high, bucket.low = max(bucket.high, c.high), min(bucket.low, c.low)
    bucket.volume += c.volume
    bucket.quote_volume += c.volume * c.close
    bucket.candles += 1
    return bucket
