"""Benchmark data: users with tokens and funded portfolios, candles and buckets, synthetic event history.

Users are funded through the command bus (the real path). Candles, hourly buckets and the event
history of the projection scenario are generated in SQL, because writing millions of rows
through the app would take longer than the whole benchmark budget:

* candles: ``n`` 1-minute candles spread over the 20 known pairs, ending at the current hour,
  prices oscillating within 2 % of each pair's start price; buckets are folded from them in SQL
  with the projection's rules (open of the first candle, close of the last, max, min, sums).
  These rows bypass the ``market.candles`` projection: a rebuild of it would empty them.
* events: per synthetic user (ids from ``SYNTHETIC_USER_BASE`` up, never a real user) one
  ``PortfolioOpened``, one ``FundsDeposited`` and then ``TradeExecuted`` events, on its own
  ``portfolio-<id>`` stream with versions 1..n, interleaved across users in position order. The
  JSON of each type is checked against the event class's fields, so a schema change fails here.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authtoken.models import Token

from cqrs_core.bus import command_bus
from cqrs_core.commands import Actor
from market.pairs import PAIRS
from market.queries import latest_prices, prices_changed
from portfolio.commands import DepositFunds
from portfolio.events import FundsDeposited, PortfolioOpened
from trading.events import TradeExecuted

SYNTHETIC_USER_BASE = 10_000_000
EVENTS_PER_USER = 100
FUNDS = Decimal(1_000_000)


def users(count: int) -> list[tuple[int, str]]:
    """``count`` users, each with an API token and a portfolio funded through the bus: (id, token)."""
    model = get_user_model()
    made = []
    for n in range(count):
        user, _ = model.objects.get_or_create(username=f"bench_{n}")
        token, _ = Token.objects.get_or_create(user=user)
        command_bus.dispatch(DepositFunds(user_id=user.pk, amount=FUNDS), actor=Actor(user_id=user.pk))
        made.append((user.pk, token.key))
    return made


def prices() -> dict[str, str]:
    """The latest price of every pair, as strings (what the trading clients price their orders at)."""
    return {pair: str(price) for pair, price in latest_prices().items()}


def candles(count: int) -> int:
    """Replace the market's rows with ``count`` generated 1m candles and their hourly buckets; returns buckets."""
    end = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    per_pair = max(1, count // len(PAIRS))
    params = ", ".join(["(%s, %s::numeric, %s::int, %s::numeric)"] * len(PAIRS))
    values: list[Any] = []
    for pair in PAIRS:
        per_minute = (pair.hourly_quote_volume / 60 / pair.start_price).quantize(Decimal("0.0001"))
        values += [pair.symbol, str(pair.start_price), pair.price_places, str(per_minute)]
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE market_candle, market_pairhourbucket")
        cursor.execute(f"""
            INSERT INTO market_candle (pair, timeframe, open_time, open, high, low, close, volume, position)
            SELECT p.symbol, '1m', %s - i * interval '1 minute',
                   round(o, p.places), round(greatest(o, c) * 1.001, p.places),
                   round(least(o, c) * 0.999, p.places), round(c, p.places),
                   round(p.vol * (1 + 0.3 * sin(i / 7.0))::numeric, 4), 0
            FROM (VALUES {params}) AS p(symbol, start, places, vol)
            CROSS JOIN generate_series(0, %s) AS i
            CROSS JOIN LATERAL (SELECT p.start * (1 + 0.02 * sin(i / 300.0))::numeric AS o,
                                       p.start * (1 + 0.02 * sin((i - 1) / 300.0))::numeric AS c) AS price
        """, [end - dt.timedelta(minutes=1), *values, per_pair - 1])
        cursor.execute("""
            INSERT INTO market_pairhourbucket (pair, hour, open, high, low, close, volume, quote_volume, candles,
                                               first_open_time, last_open_time)
            SELECT pair, date_trunc('hour', open_time), (array_agg(open ORDER BY open_time))[1], max(high), min(low),
                   (array_agg(close ORDER BY open_time DESC))[1], sum(volume), sum(volume * close), count(*),
                   min(open_time), max(open_time)
            FROM market_candle GROUP BY pair, date_trunc('hour', open_time)
        """)
        cursor.execute("ANALYZE market_candle; ANALYZE market_pairhourbucket")
        cursor.execute("SELECT count(*) FROM market_pairhourbucket")
        buckets = int(cursor.fetchone()[0])
    prices_changed()  # the rows bypassed the projection: processes must not keep the old prices
    return buckets


# --- synthetic history -----------------------------------------------------------------------------
_NOW = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
#: The JSON of each synthetic event, field by field (SQL expressions; ``u`` is the user id).
_FIELDS: dict[type, dict[str, str]] = {
    PortfolioOpened: {"user_id": "u"},
    FundsDeposited: {"user_id": "u", "amount": "'1000000'"},
    TradeExecuted: {
        "trade_id": "gen_random_uuid()::text", "user_id": "u", "client_trade_id": "NULL", "pair": "'BTC/USD'",
        "asset": "'BTC'", "side": "'buy'", "amount": "'0.0002'", "price": "'64000'",
        "notional": "'12.800000000000000000'", "fee": "'0.012800000000000000'", "realised_pnl": "'0'",
        "average_cost": "'64000'", "market_price": "'64000'", "executed_at": _NOW, "strategy_id": "NULL",
    },
}


def _json(event_type: type) -> str:
    """``jsonb_build_object(...)`` of the event's fields; fails when they differ from the class's."""
    import dataclasses

    fields = _FIELDS[event_type]
    if set(fields) != {f.name for f in dataclasses.fields(event_type)}:
        raise AssertionError(f"synthetic {event_type.__name__} does not match the event's fields")
    return "jsonb_build_object(" + ", ".join(f"'{name}', {sql}" for name, sql in fields.items()) + ")"


def synthetic_events(count: int, *, first_user: int, chunk_users: int = 1000) -> int:
    """Append about ``count`` events on new synthetic portfolio streams; returns the next free user id."""
    n_users = max(1, count // EVENTS_PER_USER)
    kind = (f"CASE WHEN v = 1 THEN '{PortfolioOpened.event_type}' WHEN v = 2 THEN '{FundsDeposited.event_type}' "
            f"ELSE '{TradeExecuted.event_type}' END")
    data = (f"CASE WHEN v = 1 THEN {_json(PortfolioOpened)} WHEN v = 2 THEN {_json(FundsDeposited)} "
            f"ELSE {_json(TradeExecuted)} END")
    with connection.cursor() as cursor:
        for low in range(first_user, first_user + n_users, chunk_users):
            high = min(low + chunk_users, first_user + n_users) - 1
            cursor.execute(f"""
                INSERT INTO cqrs_event (stream_id, stream_version, event_type, schema_version, data, event_id,
                                        command_id, correlation_id, causation_id, actor_id, metadata, recorded_at)
                SELECT 'portfolio-' || u, v, {kind}, 1, {data}, gen_random_uuid(), gen_random_uuid(),
                       gen_random_uuid(), NULL, u, '{{}}'::jsonb, now()
                FROM generate_series(1, %s) AS v CROSS JOIN generate_series(%s, %s) AS u
                ORDER BY v, u
            """, [EVENTS_PER_USER, low, high])
        cursor.execute("ANALYZE cqrs_event")
    return first_user + n_users
