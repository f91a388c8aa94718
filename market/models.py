"""Read models of the market: raw candles and hourly buckets pre-aggregated from them."""
from __future__ import annotations

from django.db import models

from .fields import ExactDecimalField


def _price() -> ExactDecimalField:
    return ExactDecimalField(max_digits=32, decimal_places=12)


class Candle(models.Model):
    """One recorded candle; unique per (pair, timeframe, open_time)."""

    pair = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=4)
    open_time = models.DateTimeField()
    open = _price()
    high = _price()
    low = _price()
    close = _price()
    volume = _price()
    position = models.BigIntegerField(help_text="Position of the event that recorded it.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pair", "timeframe", "open_time"],
                                               name="market_candle_pair_tf_time_uniq")]
        indexes = [models.Index(fields=["pair", "open_time"], name="market_candle_pair_time")]

    def __str__(self) -> str:
        return f"{self.pair} {self.timeframe} {self.open_time:%Y-%m-%d %H:%M}"


class PairHourBucket(models.Model):
    """Every candle of one pair opening within one UTC hour, folded: top coins read only these.

    ``quote_volume`` is the sum of volume x close per candle (exact, quote currency);
    ``first_open_time``/``last_open_time`` say which candles gave ``open`` and ``close``, so
    candles folded in any order give the same bucket.
    """

    pair = models.CharField(max_length=20)
    hour = models.DateTimeField()
    open = _price()
    high = _price()
    low = _price()
    close = _price()
    volume = _price()
    quote_volume = ExactDecimalField(max_digits=48, decimal_places=24)
    candles = models.IntegerField()
    first_open_time = models.DateTimeField()
    last_open_time = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pair", "hour"], name="market_bucket_pair_hour_uniq")]
        indexes = [models.Index(fields=["hour"], name="market_bucket_hour")]

    def __str__(self) -> str:
        return f"{self.pair} {self.hour:%Y-%m-%d %H}h"
