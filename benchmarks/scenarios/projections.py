"""Scenarios 4 and 7: projection catch-up and full rebuild at two sizes of the event store.

Synthetic portfolio history (``benchmarks.fixtures.synthetic_events``) is appended in SQL, so
the projections are that many events behind; then, per projection, a probe process catches up
(``run_projection``, what a worker runs) and another rebuilds from 0, each reporting its peak
memory. Each run is capped (``Mode.catchup_cap``, ``Mode.probe_cap``): a capped run reports how far
it got and its rate over that part, never an extrapolated total. The Celery workers are stopped first: the probe is the only runner.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from ..fixtures import SYNTHETIC_USER_BASE, synthetic_events
from ..limits import sequential_read
from ..report import Figure
from ..stack import BASE_DIR

if TYPE_CHECKING:
    from ..run import Run


def _probe(action: str, name: str, cap: float) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.probe", action, name, "--cap", str(cap)], cwd=BASE_DIR,
                         capture_output=True, text=True, check=True, timeout=cap + 300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def size_label(events: int) -> str:
    return f"{events // 1000}k" if events < 1_000_000 else f"{events / 1_000_000:g}M"


def projections(run: Run) -> None:
    from cqrs_core.store import head_position

    next_user = SYNTHETIC_USER_BASE
    for size in run.mode.event_sizes:
        missing = size - head_position()
        if missing > 0:
            next_user = synthetic_events(missing, first_user=next_user)
        stored = head_position()
        label = size_label(size)
        scan = sequential_read(label)
        run.limits[scan.key] = scan
        for name in run.mode.projections:
            for action in ("catchup", "rebuild"):
                cap = run.mode.catchup_cap if action == "catchup" else run.mode.probe_cap
                _add(run, name, action, label, stored, scan.key, cap, _probe(action, name, cap))


def _add(run: Run, name: str, action: str, label: str, stored: int, limit: str, cap: float, probe: dict) -> None:
    rate = probe["applied"] / probe["seconds"] if probe["seconds"] else 0.0
    finished = "" if probe["finished"] else f"capped at {cap:g} s, "
    what = "catch-up" if action == "catchup" else "full rebuild"
    note = (f"{finished}{probe['applied']:,} events in {probe['seconds']:.1f} s; "
            f"RSS {probe['rss_baseline_mb']:.0f} → {probe['rss_peak_mb']:.0f} MB")
    target = "≥ 10,000 events/s" if action == "catchup" else "1M in ≤ 60 s, flat memory"
    run.add(Figure(f"s4.{action}.{name}.{label}", "4/7", f"{name} {what}, store of {stored:,} events", rate,
                   "events/s", limit=limit, target=target, note=note,
                   extra={**probe, "store_events": stored}))
