"""Raw limits of the machine, measured in the same run as the figures they sit beside.

* one-row INSERT transactions per second with plain psycopg, 1 and 4 connections (processes);
* a sequential read of the events table (rows/s, every column, server-side cursor);
* a Redis GET round trip on the cache's server;
* a trivial Django view (``/health/live/``) over the same gunicorn server.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from .clients import http_gets, merged, run_clients, window
from .report import Limit, percentile

TABLE = "bench_raw_insert"


def _insert_client(index: int, args: dict[str, Any], start: Callable[[], float]) -> dict[str, Any]:
    import psycopg

    latencies = []
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        sql = f"INSERT INTO {TABLE} (client, payload) VALUES (%s, %s)"  # a constant name, not input
        for _ in range(20):
            conn.execute(sql, (index, "warm-up"))
        deadline, t0 = start(), time.time()
        while time.monotonic() < deadline:
            began = time.perf_counter()
            conn.execute(sql, (index, "x" * 200))
            latencies.append((time.perf_counter() - began) * 1000)
    return {"latencies": latencies, "t0": t0, "t1": time.time()}


def insert_transactions(seconds: float) -> list[Limit]:
    """One-row INSERT + COMMIT per transaction, 1 then 4 connections, each in its own process."""
    import psycopg

    url = os.environ["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, client int, payload text)")
    limits = []
    try:
        for n in (1, 4):
            results = run_clients(_insert_client, n, {"seconds": seconds}, use_django=False)
            latencies = merged(results)
            limits.append(Limit(f"pg_insert_tps_{n}", f"psycopg 1-row insert tx, {n} conn", len(latencies) / window(results),
                                "tx/s", percentile(latencies, 50)))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    return limits


def sequential_read(label: str) -> Limit:
    """Every row and column of ``cqrs_event`` in position order through a server-side cursor."""
    import psycopg

    rows = 0
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        began = time.perf_counter()
        with conn.cursor(name="bench_scan") as cursor:
            cursor.itersize = 5000
            cursor.execute("SELECT * FROM cqrs_event ORDER BY position")
            for _ in cursor:
                rows += 1
        seconds = time.perf_counter() - began
    return Limit(f"seq_read_{label}", f"sequential read of cqrs_event ({rows:,} rows)", rows / seconds, "rows/s")


def redis_get(count: int) -> Limit:
    """GET of one small key, one round trip at a time, on the cache's Redis."""
    import redis

    client = redis.Redis.from_url(os.environ["CACHE_URL"])
    client.set("bench:raw", b"x" * 100)
    latencies = []
    for _ in range(count):
        began = time.perf_counter()
        client.get("bench:raw")
        latencies.append((time.perf_counter() - began) * 1000)
    client.delete("bench:raw")
    return Limit("redis_get", "Redis GET round trip", len(latencies) / (sum(latencies) / 1000), "ops/s",
                 percentile(latencies, 50))


def trivial_view(port: int, seconds: float) -> list[Limit]:
    """``GET /health/live/`` (a view that touches nothing) on gunicorn, 1 then 4 keep-alive clients."""
    limits = []
    for n in (1, 4):
        args = {"host": "127.0.0.1", "port": port, "path": "/health/live/", "seconds": seconds}
        results = run_clients(http_gets, n, args, use_django=False)
        latencies = merged(results)
        limits.append(Limit(f"http_trivial_{n}", f"trivial view on gunicorn, {n} client{'s' if n > 1 else ''}",
                            len(latencies) / window(results), "req/s", percentile(latencies, 50)))
    return limits
