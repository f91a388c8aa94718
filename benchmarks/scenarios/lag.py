"""Scenario 5: commit -> read model visible under a sustained command rate, with real workers.

Client processes send ExecuteTrade at a fixed rate (open loop) and note when each command's
transaction had committed (``dispatch`` returned) and its position. A listener in this process
hears the projection runner's ``cqrs_projection`` notifications, sent when a batch commits with
the new checkpoint; a command is visible in a read model at the first notification of that
projection at or past its position (checkpoints are gap-free: everything below is applied).
"""
from __future__ import annotations

import bisect
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from .. import cpu
from ..clients import paced_trades, run_clients
from ..report import Figure, percentile

if TYPE_CHECKING:
    from ..run import Run

PROJECTIONS = ("portfolio.portfolios", "trading.trades")
SLOTS = (9, 10)
DRAIN_SECONDS = 60.0
#: Longest wait, before sending, for the async projections to reach the head the earlier scenarios left.
SETTLE_SECONDS = 120.0


class Listener(threading.Thread):
    """Collects ``(wall time, projection, position)`` of every projection notification."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.heard: list[tuple[float, str, int]] = []
        self.ready = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        from cqrs_core.projections import NOTIFY_CHANNEL

        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self.ready.set()
            while not self.stopping.is_set():
                for note in conn.notifies(timeout=0.2):
                    name, _, position = note.payload.rpartition(":")
                    self.heard.append((time.time(), name, int(position)))

    def reached(self, name: str) -> int:
        return max((p for _, n, p in self.heard if n == name), default=0)


def _lags(commits: list[tuple[float, int]], heard: list[tuple[float, str, int]], name: str) -> tuple[list[float], int]:
    """Milliseconds from each commit to its projection's first checkpoint at or past it; and how many never were."""
    marks = [(p, t) for t, n, p in heard if n == name]
    positions, times = [p for p, _ in marks], [t for _, t in marks]
    lags, missing = [], 0
    for committed, position in commits:
        i = bisect.bisect_left(positions, position)
        if i == len(positions):
            missing += 1
        else:
            lags.append(max(0.0, (times[i] - committed) * 1000))
    return lags, missing


def settle(timeout: float = SETTLE_SECONDS) -> tuple[int, float]:
    """Wait until no async projection has an event of its types past its checkpoint; (events behind, seconds).

    The earlier scenarios send commands faster than the two worker processes project them (scenario
    1 at over 1,000/s), so without this the lag figures would include draining their backlog, not
    the lag under the scenario's own rate. Returns how many events of their types the projections
    had to apply at the start (a projection of other types keeps its checkpoint where it is).
    """
    from cqrs_core.models import ProjectionState, StoredEvent
    from cqrs_core.projections import ASYNC, projections

    wanted = {p.name: sorted(p.event_types) for p in projections() if p.mode == ASYNC}
    started = time.monotonic()
    first = None
    while True:
        checkpoints = dict(ProjectionState.objects.filter(name__in=wanted).values_list("name", "position"))
        behind = sum(StoredEvent.objects.filter(position__gt=checkpoints.get(name, 0), event_type__in=types).count()
                     for name, types in wanted.items())
        first = behind if first is None else first
        if not behind or time.monotonic() - started > timeout:
            return first, time.monotonic() - started
        time.sleep(0.1)


def lag(run: Run) -> None:
    behind, waited = settle()
    print(f"  async projections {behind:,} events behind at the start; caught up in {waited:.1f} s", flush=True)
    listener = Listener()
    listener.start()
    listener.ready.wait(10)
    n = len(SLOTS)
    args = {"seconds": run.mode.lag_seconds, "rate": run.mode.lag_rate / n, "users": [run.user_ids(s) for s in SLOTS],
            "prices": run.prices, "ryw_every": 10}
    try:
        metered: dict[str, Any] = {}
        results = run_clients(paced_trades, n, args, cpu_window=metered)
        commits = sorted(c for r in results for c in r["commits"])
        cpu_ms = cpu.breakdown(metered.get("before"), metered.get("after"), len(commits),
                               sum(r.get("cpu", 0.0) for r in results))
        last = max((p for _, p in commits), default=0)
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline and min(listener.reached(p) for p in PROJECTIONS) < last:
            time.sleep(0.05)
    finally:
        listener.stopping.set()
        listener.join(5)
    _dump_series(commits, listener.heard)
    seconds = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    offered = f"{run.mode.lag_rate:g} cmd/s offered"
    achieved = len(commits) / seconds if seconds else 0.0
    for name in PROJECTIONS:
        lags, missing = _lags(commits, listener.heard, name)
        note = f"{offered}, {len(commits)} commits" + (f", {missing} not visible after {DRAIN_SECONDS:g} s drain"
                                                       if missing else "")
        if name == PROJECTIONS[0] and cpu_ms:
            note += f"; {cpu.describe(cpu_ms)} (the whole host while sending)"
        run.add(Figure(f"s5.lag.{name}", "5", f"commit → {name} visible, real workers", achieved, "cmd/s",
                       percentile(lags, 50), percentile(lags, 99), target="p99 ≤ 1 s at 200 cmd/s", note=note,
                       extra={"missing": missing, "offered": run.mode.lag_rate, "cpu_ms_per_op": cpu_ms}))
    _read_your_writes(run, results)


def _dump_series(commits: list[tuple[float, int]], heard: list[tuple[float, str, int]]) -> None:
    """The raw series behind the lag figures (``results/lag_series.json``), for looking into a tail."""
    import json

    from ..run import RESULTS

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lag_series.json").write_text(json.dumps({"commits": commits, "heard": heard}))


def _read_your_writes(run: Run, results: list[dict[str, Any]]) -> None:
    reads = [r for res in results for r in res["reads"]]
    totals, waits = [t for t, _, _ in reads], [w for _, w, _ in reads]
    stale = sum(1 for *_, s in reads if s)
    run.add(Figure("s5.ryw", "5", "GetPortfolio with min_position right after the command (read-your-writes)",
                   float(len(reads)), "reads", percentile(totals, 50), percentile(totals, 99),
                   note=f"wait p50 {percentile(waits, 50) or 0:.1f} ms, p99 {percentile(waits, 99) or 0:.1f} ms; "
                        f"stale {stale}", extra={"stale": stale, "wait_p50_ms": percentile(waits, 50),
                                                 "wait_p99_ms": percentile(waits, 99)}))
