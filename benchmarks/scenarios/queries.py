"""Scenario 3: GetPortfolio and GetTopCoins, cached and cold, through the query bus and over HTTP."""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from ..clients import bus_queries, http_gets, merged, run_clients, window
from ..report import latency_figure

if TYPE_CHECKING:
    from ..run import Run

SLOT = 11
TOP_COINS_PATH = "/api/market/top-coins/?window=24h&sort=volume"
TARGETS = {("bus", "portfolio_cached"): "p50 ≤ 1 ms", ("http", "portfolio_cached"): "p50 ≤ 5 ms",
           ("bus", "top_coins_uncached"): "p50 ≤ 50 ms", ("http", "top_coins_uncached"): "p50 ≤ 50 ms"}
LABELS = {"portfolio": "GetPortfolio", "top_coins": "GetTopCoins 24h"}


def _add(run: Run, via: str, phases: dict[str, dict], limit: str) -> None:
    for phase, result in phases.items():
        query, state = phase.rsplit("_", 1)
        latencies = result["latencies"]
        note = f"{run.candle_rows:,} candle rows" if query == "top_coins" else ""
        if "cache_hits" in result:
            note = ", ".join(filter(None, [note, f"cache hits {result['cache_hits']}/{len(latencies)}"]))
        # Cold reads are timed one by one (the cache is emptied between them): their rate is 1 / mean.
        seconds = sum(latencies) / 1000 if state == "uncached" else result["t1"] - result["t0"]
        run.add(latency_figure(f"s3.{via}.{phase}", "3", f"{LABELS[query]} via {via}, {state}", latencies,
                               count=len(latencies), seconds=seconds, unit="q/s",
                               limit=limit if state == "cached" or via == "http" else "",
                               target=TARGETS.get((via, phase), ""), note=note))


def _both(run: Run, query: str, path: str) -> None:
    """One bus client, then one HTTP client: cached, then cold."""
    args = {"seconds": run.mode.seconds / 2, "max_count": run.mode.samples, "users": [run.user_ids(SLOT)],
            "queries": [query]}
    bus = run_clients(bus_queries, 1, args)[0]
    _add(run, "bus", bus["phases"], "redis_get")
    phases = [(f"{query}_cached", path, False), (f"{query}_uncached", path, True)]
    http_args = {**args, "tokens": [run.tokens(SLOT)], "host": "127.0.0.1", "port": run.stack.port,
                 "phases": phases, "flush_url": os.environ["CACHE_URL"]}
    http = run_clients(http_gets, 1, http_args, use_django=False)[0]
    _add(run, "http", http["phases"], "http_trivial_1,redis_get")


def portfolio(run: Run) -> None:
    """GetPortfolio via the bus and HTTP; then cached over HTTP from 4 clients."""
    _both(run, "portfolio", "/api/portfolio/")
    four = {"seconds": run.mode.seconds, "tokens": [run.tokens(s) for s in range(1, 5)], "host": "127.0.0.1",
            "port": run.stack.port, "path": "/api/portfolio/"}
    results = run_clients(http_gets, 4, four, use_django=False)
    latencies = merged(results)
    run.add(latency_figure("s3.http.portfolio_cached_c4", "3", "GetPortfolio via http, cached, 4 clients", latencies,
                           count=len(latencies), seconds=window(results), unit="q/s", limit="http_trivial_4"))


def top_coins(run: Run) -> None:
    """GetTopCoins over the big candle table, then latest prices at that size."""
    _both(run, "top_coins", TOP_COINS_PATH)
    latest_prices(run)


def latest_prices(run: Run) -> None:
    """``market.snapshot()``, which every ExecuteTrade and GetPortfolio calls, at the current candle count."""
    from market.queries import prices_changed
    from portfolio.market import snapshot

    latencies: list[float] = []
    deadline = time.monotonic() + run.mode.seconds
    while time.monotonic() < deadline and len(latencies) < run.mode.samples:
        prices_changed()  # untimed: each call reads the database, not this process's kept answer
        began = time.perf_counter()
        snapshot()
        latencies.append((time.perf_counter() - began) * 1000)
    size = f"{run.candle_rows // 1000}k"
    run.add(latency_figure(f"s3.market.latest_prices.{size}", "3",
                           f"market.snapshot() (latest prices; every trade and GetPortfolio), {run.candle_rows:,} candles",
                           latencies, count=len(latencies), seconds=sum(latencies) / 1000, unit="q/s",
                           note="read from the database (one index probe per pair: the cost does not grow with the table); a process keeps the answer until the candles projection moves"))
