"""A projection run in a process of its own, so its peak memory is its own: ``python -m benchmarks.probe``.

``catchup NAME --cap S``: ``run_projection`` (what the Celery task calls) until caught up or
``S`` seconds. ``rebuild NAME --cap S``: ``rebuild`` from position 0; past ``S`` seconds it asks
the rebuild to cancel (it stops after its batch, paused) and says so. Prints one JSON line:
events applied, seconds, and the process's resident memory after set-up and at its peak.
"""
from __future__ import annotations

import argparse
import json
import resource
import threading
import time


def _rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def catch_up(name: str, cap: float) -> dict[str, object]:
    from cqrs_core.projections import resume, run_projection
    from cqrs_core.store import head_position

    resume(name)  # a capped rebuild before may have left it paused; resuming keeps its checkpoint
    head = head_position()
    applied, began = 0, time.perf_counter()
    while time.perf_counter() - began < cap:
        report = run_projection(name, max_batches=1)
        applied += report.applied
        # A batch of other types' positions applies nothing and is not the end: the head is.
        if report.applied == 0 and not report.busy and (report.position >= head or report.status != "running"):
            break
    seconds = time.perf_counter() - began
    return {"applied": applied, "seconds": seconds, "finished": time.perf_counter() - began < cap}


def rebuild(name: str, cap: float) -> dict[str, object]:
    from django.db import connection

    from cqrs_core.projections import rebuild as run_rebuild
    from cqrs_core.projections import request_cancel

    def cancel() -> None:
        request_cancel(name)
        connection.close()

    timer = threading.Timer(cap, cancel)
    timer.start()
    try:
        report = run_rebuild(name)
    finally:
        timer.cancel()
    return {"applied": report.applied, "seconds": report.seconds, "finished": not report.cancelled,
            "dead_lettered": report.dead_lettered}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probe")
    parser.add_argument("action", choices=["catchup", "rebuild"])
    parser.add_argument("projection")
    parser.add_argument("--cap", type=float, default=600.0, help="seconds before giving up (reported)")
    args = parser.parse_args()
    import django

    django.setup()
    baseline = _rss_mb()
    outcome = (catch_up if args.action == "catchup" else rebuild)(args.projection, args.cap)
    print(json.dumps({**outcome, "rss_baseline_mb": round(baseline, 1), "rss_peak_mb": round(_rss_mb(), 1)}))


if __name__ == "__main__":
    main()
