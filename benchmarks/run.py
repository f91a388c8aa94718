"""The harness: set up the stack, measure the raw limits, run the scenarios, print and save the figures.

``python -m benchmarks [--quick | --tiny] [--json PATH] [--keep-database] [--scenarios DIGITS]``; ``./dev.sh bench``
sets the services' environment and calls it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .report import Figure, Limit, table, write_json
from .stack import BASE_DIR, Stack, bench_environment, database_name, flush_redis, recreate_database

RESULTS = BASE_DIR / "benchmarks" / "results"


@dataclass(frozen=True)
class Mode:
    """How big a run is: seconds per measurement, data sizes, caps."""

    name: str
    seconds: float
    limit_seconds: float
    samples: int
    candles: int
    users_per_client: int
    lag_rate: float
    lag_seconds: float
    sagas: int
    event_sizes: tuple[int, ...]
    probe_cap: float
    #: Cap of a catch-up probe: its figure is a rate, which a capped run still measures over most of the
    #: events (the full run's 1M store took 85-110 s per projection to catch up, a third of the run).
    catchup_cap: float = 0.0
    projections: tuple[str, ...] = ("trading.trades", "portfolio.portfolios")
    #: Candle rows while commands and portfolio queries run: latest_prices() reads every candle
    #: (see the ``s3.market.latest_prices`` figures), so the big table is loaded only for top coins.
    market_candles: int = 1_000
    workers: int = 2
    web_workers: int = 4


MODES = {
    "tiny": Mode("tiny", seconds=1, limit_seconds=0.5, samples=5, candles=20_000, users_per_client=2, lag_rate=20,
                 lag_seconds=2, sagas=3, event_sizes=(1_000, 3_000), probe_cap=30, catchup_cap=30),
    "quick": Mode("quick", seconds=2, limit_seconds=1, samples=30, candles=500_000, users_per_client=5,
                  lag_rate=100, lag_seconds=5, sagas=10, event_sizes=(10_000, 50_000), probe_cap=3,
                  catchup_cap=3),
    "full": Mode("full", seconds=15, limit_seconds=5, samples=200, candles=5_000_000, users_per_client=10,
                 lag_rate=200, lag_seconds=30, sagas=200, event_sizes=(100_000, 1_000_000), probe_cap=120,
                 catchup_cap=45),
}
#: Client slots (each a set of ``users_per_client`` users): 0 hot, 1-4 bus, 5-8 HTTP, 9-10 lag, 11 queries.
SLOTS = 12


@dataclass
class Run:
    """What the scenarios share: the mode, the stack, the users and prices, and what was measured."""

    mode: Mode
    stack: Stack
    users: list[tuple[int, str]] = field(default_factory=list)
    prices: dict[str, str] = field(default_factory=dict)
    candle_rows: int = 0
    figures: list[Figure] = field(default_factory=list)
    limits: dict[str, Limit] = field(default_factory=dict)

    def _slot(self, slot: int, count: int | None) -> list[tuple[int, str]]:
        size = self.mode.users_per_client
        return self.users[slot * size:slot * size + (count or size)]

    def user_ids(self, slot: int, count: int | None = None) -> list[int]:
        return [pk for pk, _ in self._slot(slot, count)]

    def tokens(self, slot: int) -> list[str]:
        return [token for _, token in self._slot(slot, None)]

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        value = "not yet" if figure.value is None else f"{figure.value:,.1f} {figure.unit}"
        latency = f"  p50 {figure.p50_ms:.2f} ms  p99 {figure.p99_ms:.2f} ms" if figure.p50_ms is not None else ""
        print(f"  {figure.key:<48} {value}{latency}  {figure.note}", flush=True)


def expected_keys(mode: Mode) -> set[str]:
    """Every figure and limit key a run of ``mode`` writes (the JSON's contract; the smoke test checks it)."""
    from .scenarios.projections import size_label

    figures = {"s1.bus.distinct_c1", "s1.bus.distinct_c4", "s1.bus.hot_c4", "s2.http.distinct_c1",
               "s2.http.distinct_c4", "s3.http.portfolio_cached_c4", "s5.lag.portfolio.portfolios",
               "s5.lag.trading.trades", "s5.ryw", "s6.sagas.transfer", "s6.sagas.yield"}
    figures |= {f"s3.{via}.{query}_{state}" for via in ("bus", "http") for query in ("portfolio", "top_coins")
                for state in ("cached", "uncached")}
    figures |= {f"s3.market.latest_prices.{n // 1000}k" for n in (mode.market_candles, mode.candles)}
    figures |= {f"s4.{action}.{name}.{size_label(size)}" for action in ("catchup", "rebuild")
                for name in mode.projections for size in mode.event_sizes}
    limits = {"pg_insert_tps_1", "pg_insert_tps_4", "redis_get", "http_trivial_1", "http_trivial_4"}
    limits |= {f"seq_read_{size_label(size)}" for size in mode.event_sizes}
    return figures | limits


def _step(title: str, fn: Callable[[], Any]) -> Any:
    print(f"==> {title}", flush=True)
    began = time.monotonic()
    result = fn()
    print(f"    ({time.monotonic() - began:.1f} s)", flush=True)
    return result


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def measure(mode: Mode, *, fresh: bool, json_path: Path, only: str = "") -> Run:
    """The whole run; every process it started is stopped on the way out, however it ends."""
    env = bench_environment()
    if fresh:
        _step(f"Recreating database {database_name(env['DATABASE_URL'])}", lambda: recreate_database(env["DATABASE_URL"]))
    flush_redis(env["CACHE_URL"], env["CELERY_BROKER_URL"])
    import django
    from django.core.management import call_command

    django.setup()
    from . import fixtures
    from .scenarios import commands, lag, projections, queries, sagas

    _step("Migrating", lambda: call_command("migrate", verbosity=0))
    started = time.monotonic()
    with Stack(log_dir=RESULTS / "logs", workers=mode.workers, web_workers=mode.web_workers) as stack:
        run = Run(mode, stack)
        run.candle_rows = mode.market_candles
        _step(f"Candles: {mode.market_candles:,} rows and their hourly buckets (SQL)",
              lambda: fixtures.candles(mode.market_candles))
        run.prices = fixtures.prices()
        _step("Starting Celery worker(s) and gunicorn", lambda: (stack.start_workers(), stack.start_web(),
                                                                 stack.wait_workers()))
        run.users = _step(f"Users: {SLOTS * mode.users_per_client} with tokens, funded through the bus",
                          lambda: fixtures.users(SLOTS * mode.users_per_client))
        for limit in _step("Raw limits", lambda: _limits(mode, stack)):
            run.limits[limit.key] = limit
            print(f"  {limit.short()}", flush=True)
        wanted = set(only or "123456")
        if "1" in wanted:
            _step("Scenario 1: ExecuteTrade through the bus", lambda: commands.bus(run))
        if "2" in wanted:
            _step("Scenario 2: ExecuteTrade over HTTP", lambda: commands.http(run))
        if "3" in wanted:
            _step("Scenario 3: portfolio queries", lambda: queries.portfolio(run))
        if "5" in wanted:
            _step("Scenario 5: command-to-read-model lag", lambda: lag.lag(run))
        if "6" in wanted:
            _step("Scenario 6: sagas", lambda: sagas.sagas(run))
        if "3" in wanted:
            queries.latest_prices(run)
            run.candle_rows = mode.candles
            _step(f"Candles: {mode.candles:,} rows and their hourly buckets (SQL)",
                  lambda: fixtures.candles(mode.candles))
            _step("Scenario 3: market queries", lambda: queries.top_coins(run))
        stack.stop("celery")
        if "4" in wanted:
            _step("Scenarios 4 and 7: projections at two store sizes", lambda: projections.projections(run))
    meta = _meta(mode, time.monotonic() - started)
    print("\n" + table(run.figures, run.limits))
    write_json(json_path, meta, run.figures, run.limits)
    print(f"\nWrote {json_path} ({meta['seconds']:.0f} s)")
    return run


def _limits(mode: Mode, stack: Stack) -> list[Limit]:
    from . import limits

    return [*limits.insert_transactions(mode.limit_seconds), limits.redis_get(2000),
            *limits.trivial_view(stack.port, mode.limit_seconds)]


def _meta(mode: Mode, seconds: float) -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    return {"mode": asdict(mode), "seconds": round(seconds, 1), "finished_at": dt.datetime.now(dt.timezone.utc),
            "machine": {"cpus": os.cpu_count(), "memory_gb": _memory_gb(), "platform": platform.platform(),
                        "python": platform.python_version(), "postgresql": pg,
                        "load_average": os.getloadavg()}}


def _memory_gb() -> float:
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="mode", const="quick", help="under 2 minutes")
    size.add_argument("--tiny", action="store_const", dest="mode", const="tiny", help="seconds; for the smoke test")
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json", help="where to write the figures")
    parser.add_argument("--keep-database", action="store_true",
                        help="use DATABASE_URL as it is (migrated) instead of recreating it")
    parser.add_argument("--scenarios", default="", metavar="DIGITS",
                        help="run only these scenarios, e.g. 15 for 1 and 5 (4 includes 7; default: all)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        measure(MODES[args.mode or "full"], fresh=not args.keep_database, json_path=args.json, only=args.scenarios)
    except KeyboardInterrupt:
        print("\nbench: interrupted; the stack is stopped", file=sys.stderr)
        return 130
    return 0
