"""Scenarios 1 and 2: ExecuteTrade through the bus and over HTTP, 1 and 4 clients, distinct and hot portfolios."""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from .. import cpu
from ..clients import bus_trades, http_trades, merged, run_clients, window
from ..report import latency_figure

if TYPE_CHECKING:
    from ..run import Run

BUS_LIMIT = "pg_insert_tps_1,pg_insert_tps_4"


def _errors(results: list[dict[str, Any]]) -> dict[str, int]:
    total: Counter = Counter()
    for r in results:
        total.update(r["errors"])
    return dict(total)


def bus(run: Run) -> None:
    """Scenario 1: ``command_bus.dispatch(ExecuteTrade)`` from 1 and 4 processes, then 4 on one portfolio."""
    cases = [("distinct_c1", 1, False), ("distinct_c4", 4, False), ("hot_c4", 4, True)]
    for name, n, hot in cases:
        users = [run.user_ids(0, 1)] * n if hot else [run.user_ids(i + 1) for i in range(n)]
        metered: dict[str, Any] = {}
        results = run_clients(bus_trades, n, {"seconds": run.mode.seconds, "users": users, "prices": run.prices},
                              cpu_window=metered)
        latencies = merged(results)
        cpu_ms = _cpu(metered, results, len(latencies))
        where = "one hot portfolio" if hot else "distinct portfolios"
        target = {"distinct_c1": "p50 ≤ 5 ms", "distinct_c4": "≥ 1,000 cmd/s"}.get(name, "")
        errors = _errors(results)
        retries = sum(r["retries"] for r in results)
        note = _joined(f"retries {retries}" + (f", refused {errors}" if errors else ""), cpu.describe(cpu_ms))
        run.add(latency_figure(f"s1.bus.{name}", "1", f"ExecuteTrade via bus, {n} client{'s' * (n > 1)}, {where}",
                               latencies, count=len(latencies), seconds=window(results), unit="cmd/s",
                               limit=BUS_LIMIT, target=target, note=note, retries=retries, errors=errors,
                               cpu_ms_per_op=cpu_ms))


def http(run: Run) -> None:
    """Scenario 2: POST /api/trading/trades/ on gunicorn from 1 and 4 keep-alive client processes."""
    for n in (1, 4):
        users = [run.user_ids(5 + i) for i in range(n)]
        tokens = [run.tokens(5 + i) for i in range(n)]
        args = {"seconds": run.mode.seconds, "users": users, "tokens": tokens, "prices": run.prices,
                "host": "127.0.0.1", "port": run.stack.port}
        metered: dict[str, Any] = {}
        results = run_clients(http_trades, n, args, use_django=False, cpu_window=metered)
        latencies = merged(results)
        errors = _errors(results)
        cpu_ms = _cpu(metered, results, len(latencies))
        run.add(latency_figure(f"s2.http.distinct_c{n}", "2",
                               f"ExecuteTrade over HTTP (gunicorn), {n} client{'s' * (n > 1)}, distinct portfolios",
                               latencies, count=len(latencies), seconds=window(results), unit="req/s",
                               limit=f"http_trivial_{n},{BUS_LIMIT}", target="p50 ≤ 10 ms" if n == 1 else "",
                               note=_joined(f"non-201: {errors}" if errors else "", cpu.describe(cpu_ms)), errors=errors,
                               cpu_ms_per_op=cpu_ms))


def _cpu(metered: dict[str, Any], results: list[dict[str, Any]], operations: int) -> dict[str, float]:
    """CPU ms per operation of each group of processes over the clients' timed window (``benchmarks.cpu``)."""
    return cpu.breakdown(metered.get("before"), metered.get("after"), operations,
                         sum(r.get("cpu", 0.0) for r in results))


def _joined(*notes: str) -> str:
    return "; ".join(note for note in notes if note)
