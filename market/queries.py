"""Queries of the market context, and plain functions other contexts may call.

Other contexts use :func:`latest_price` and :func:`known_pairs` (or the ``GetLatestPrice``
query through the bus); they never import this context's models.
"""
from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Max

from cqrs_core.queries import CachePolicy, Query, QueryContext, invalidate, query_handler, scope_version

from .analytics import CoinStats, Hour, rank, summarise, window_start
from .models import Candle, PairHourBucket
from .pairs import PAIRS, Pair, get_pair, known_pairs, require_pair
from .projections import CANDLES, PRICES_SCOPE

QUOTE_PLACES = Decimal("0.00000001")


def latest_price(pair: str) -> Decimal | None:
    """The close of the pair's latest recorded candle; None for an unknown pair or before any candle."""
    known = get_pair(pair)
    if known is None:
        return None
    return Candle.objects.filter(pair=known.symbol).order_by("-open_time").values_list("close", flat=True).first()


@dataclass(frozen=True)
class _Kept:
    """This process's last answer of :func:`latest_prices`, the scope version it was read at, and when it last checked."""

    version: str
    prices: dict[str, Decimal]
    checked_at: float


_latest: _Kept | None = None


def latest_prices() -> dict[str, Decimal]:
    """The latest close of every known pair that has a candle.

    Every trade and every portfolio valuation asks, and prices move once a minute, so each process
    keeps its last answer with the version of scope :data:`PRICES_SCOPE` it was read at and reads
    again once the scope moved. The version is read before the rows, so an answer is never kept
    under a version newer than its data. The projection bumps the scope after its transaction
    commits (``cqrs_core.queries.invalidate``) and, in its own process, drops the kept answer at
    once; without the cache (Redis down) every call reads the database.

    A kept answer is trusted without asking the cache for ``MARKET_PRICES_RECHECK_SECONDS``
    (0.1 s): the prices a command or a valuation uses are then at most that much older than the
    projected candles, which themselves trail the feed by the projection's lag. The GET it saves
    was a twelfth of a trade's client CPU (one of its five round trips).
    """
    global _latest
    kept, now = _latest, time.monotonic()
    if kept is not None and now - kept.checked_at < settings.MARKET_PRICES_RECHECK_SECONDS:
        return dict(kept.prices)
    version = scope_version(PRICES_SCOPE)
    if version is not None and kept is not None and kept.version == version:
        _latest = _Kept(version, kept.prices, now)
        return dict(kept.prices)
    prices = _read_latest_prices()
    if version is not None:
        _latest = _Kept(version, prices, now)
    return dict(prices)


def forget_kept_prices() -> None:
    """Drop this process's kept latest prices (they changed here: the next call reads again)."""
    global _latest
    _latest = None


def prices_changed() -> None:
    """Tell every process that candle rows changed outside the projection (fixtures, repairs)."""
    forget_kept_prices()
    invalidate(PRICES_SCOPE)


def _read_latest_prices() -> dict[str, Decimal]:
    """The latest close of every known pair that has a candle, in one statement.

    One probe of index ``market_candle_pair_time`` per pair (``ORDER BY open_time DESC LIMIT 1``):
    the cost grows with the number of pairs, not with the candle table (a correlated "newest
    open_time" subquery scanned every candle: seconds at 500k rows). On PostgreSQL one ``LATERAL``
    subquery over the pairs (planned once: 0.3 ms, where 20 scalar subqueries took 1.1 ms to plan
    and run); elsewhere one scalar subquery per pair. Raw SQL because the ORM cannot put sliced
    querysets in a ``UNION`` on SQLite.
    """
    if not PAIRS:
        return {}
    quote = connection.ops.quote_name
    meta = Candle._meta
    close, pair, open_time = (quote(meta.get_field(name).column) for name in ("close", "pair", "open_time"))
    symbols = [p.symbol for p in PAIRS]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT p.symbol, c.{close} FROM unnest(%s::text[]) AS p(symbol) CROSS JOIN LATERAL "
                           f"(SELECT {close} FROM {quote(meta.db_table)} WHERE {pair} = p.symbol "
                           f"ORDER BY {open_time} DESC LIMIT 1) AS c", [symbols])
            found = dict(cursor.fetchall())
        else:
            one = f"(SELECT {close} FROM {quote(meta.db_table)} WHERE {pair} = %s ORDER BY {open_time} DESC LIMIT 1)"
            cursor.execute("SELECT " + ", ".join([one] * len(symbols)), symbols)
            found = dict(zip(symbols, cursor.fetchone(), strict=True))
    return {symbol: Decimal(str(found[symbol])) for symbol in symbols if found.get(symbol) is not None}


def hourly_closes(pairs: Iterable[str], *, since: dt.datetime | None = None,
                  until: dt.datetime | None = None) -> dict[str, list[tuple[dt.datetime, Decimal]]]:
    """Each pair's hourly closes ``(hour, close)``, oldest first, for ``since <= hour < until``.

    ``close`` is the close of the last candle recorded in that UTC hour (its hourly bucket), so
    the close of the hour still in progress is the latest price. Pairs without candles are absent.
    """
    rows = PairHourBucket.objects.filter(pair__in=list(pairs))
    if since is not None:
        rows = rows.filter(hour__gte=since)
    if until is not None:
        rows = rows.filter(hour__lt=until)
    closes: dict[str, list[tuple[dt.datetime, Decimal]]] = defaultdict(list)
    for pair, hour, close in rows.order_by("pair", "hour").values_list("pair", "hour", "close").iterator(2000):
        closes[pair].append((hour, close))
    return dict(closes)


# --- top coins ---------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class GetTopCoins(Query):
    sort: str = "volume"
    window: str = "24h"
    limit: int = 20
    min_volume: Decimal = Decimal(0)
    include_stablecoins: bool = False
    descending: bool = True


@query_handler(GetTopCoins, projections=[CANDLES], cache=CachePolicy(ttl=60))
def get_top_coins(query: GetTopCoins, ctx: QueryContext) -> dict[str, Any]:
    """Pairs ranked over a window ending at the latest recorded hour; reads only hourly buckets."""
    as_of = PairHourBucket.objects.aggregate(latest=Max("hour"))["latest"]
    if as_of is None:
        return {"as_of": None, "window": query.window, "sort": query.sort, "results": []}
    start = window_start(as_of, query.window)
    hours: dict[str, list[Hour]] = defaultdict(list)
    rows = PairHourBucket.objects.filter(hour__gte=start, hour__lte=as_of).values_list(
        "pair", "hour", "open", "high", "low", "close", "volume", "quote_volume")
    for pair, *values in rows.iterator(chunk_size=2000):
        hours[pair].append(Hour(*values))
    stats = [summarise(p.symbol, p.base, p.is_stablecoin, hours[p.symbol]) for p in _candidates(query)
             if hours.get(p.symbol)]
    ranked = rank(stats, sort=query.sort, descending=query.descending, min_volume=query.min_volume,
                  limit=query.limit)
    return {"as_of": as_of, "window_start": start, "window": query.window, "sort": query.sort,
            "results": [_coin(s) for s in ranked]}


def _candidates(query: GetTopCoins) -> list[Pair]:
    return [p for p in PAIRS if query.include_stablecoins or not p.is_stablecoin]


def _coin(stats: CoinStats) -> dict[str, Any]:
    return {"pair": stats.pair, "base": stats.base, "is_stablecoin": stats.is_stablecoin,
            "last_price": stats.last_price, "open_price": stats.open_price, "high": stats.high, "low": stats.low,
            "volume": stats.volume, "quote_volume": stats.quote_volume.quantize(QUOTE_PLACES),
            "price_change_pct": stats.price_change_pct, "volatility_pct": stats.volatility_pct,
            "hours": stats.hours}


# --- candles -----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class GetCandles(Query):
    pair: str
    timeframe: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    limit: int = 100
    offset: int = 0


@query_handler(GetCandles, projections=[CANDLES], cache=CachePolicy(ttl=60))
def get_candles(query: GetCandles, ctx: QueryContext) -> dict[str, Any]:
    """One page of a pair's candles, oldest first, with ``start <= open_time < end``."""
    pair = require_pair(query.pair)
    rows = Candle.objects.filter(pair=pair.symbol)
    if query.timeframe:
        rows = rows.filter(timeframe=query.timeframe)
    if query.start is not None:
        rows = rows.filter(open_time__gte=query.start)
    if query.end is not None:
        rows = rows.filter(open_time__lt=query.end)
    page = rows.order_by("open_time").values(
        "timeframe", "open_time", "open", "high", "low", "close", "volume")[query.offset:query.offset + query.limit]
    return {"pair": pair.symbol, "count": rows.count(), "results": list(page)}


# --- latest price and pairs --------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class GetLatestPrice(Query):
    pair: str


@query_handler(GetLatestPrice, projections=[CANDLES], cache=CachePolicy(ttl=60))
def get_latest_price(query: GetLatestPrice, ctx: QueryContext) -> dict[str, Any]:
    """The latest close of a known pair (``price`` is None before its first candle)."""
    pair = require_pair(query.pair)
    row = Candle.objects.filter(pair=pair.symbol).order_by("-open_time").values("open_time", "close").first()
    return {"pair": pair.symbol, "price": row["close"] if row else None, "open_time": row["open_time"] if row else None}


@dataclass(frozen=True, kw_only=True)
class ListPairs(Query):
    pass


@query_handler(ListPairs, projections=[CANDLES], cache=CachePolicy(ttl=60))
def list_pairs(query: ListPairs, ctx: QueryContext) -> list[dict[str, Any]]:
    """Every known pair with its latest price (None before its first candle)."""
    return [{"pair": p.symbol, "base": p.base, "quote": p.quote, "is_stablecoin": p.is_stablecoin,
             "price": latest_price(p.symbol)} for p in PAIRS]


__all__ = ["GetCandles", "GetLatestPrice", "GetTopCoins", "ListPairs", "known_pairs",
           "hourly_closes", "latest_price", "require_pair"]
