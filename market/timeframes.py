"""Candle timeframes the market accepts: those that tile an hour, so hourly buckets stay exact."""
from __future__ import annotations

import datetime as dt

TIMEFRAMES: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}
HOUR = dt.timedelta(hours=1)


def timeframe_delta(timeframe: str) -> dt.timedelta:
    return dt.timedelta(seconds=TIMEFRAMES[timeframe])


def floor_hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def is_aligned(moment: dt.datetime, timeframe: str) -> bool:
    """Whether a candle of ``timeframe`` may open at ``moment`` (UTC, on a multiple of its length)."""
    if moment.utcoffset() != dt.timedelta(0) or moment.microsecond:
        return False
    return int(moment.timestamp()) % TIMEFRAMES[timeframe] == 0
