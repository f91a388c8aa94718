"""``manage.py projections``: the status of every projection, a health check, a run without workers.

* Default: a table of name, mode, status, checkpoint, head, lag (events and seconds) and
  pending dead letters, from :func:`cqrs_core.projections.lag`.
* ``--check``: exit non-zero when a projection is failed or lags beyond the thresholds (for
  monitoring and deploy scripts).
* ``--run``: run every async projection once now, in this process (handy without workers).
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from cqrs_core.projections import ASYNC, Lag, Status, lag, projections, run_projection

COLUMNS = ("name", "mode", "status", "checkpoint", "head", "lag events", "lag seconds", "dead letters")


def _row(item: Lag) -> tuple[str, ...]:
    return (item.name, item.mode, item.status, str(item.position), str(item.head), str(item.events_behind),
            f"{item.seconds_behind:.1f}", str(item.pending_dead_letters))


def problems(items: list[Lag], *, max_lag_events: int, max_lag_seconds: float) -> list[str]:
    """Why each unhealthy projection is unhealthy (empty: all fine)."""
    found = []
    for item in items:
        if item.status == Status.FAILED:
            found.append(f"{item.name} is failed at checkpoint {item.position}")
        if item.events_behind > max_lag_events:
            found.append(f"{item.name} is {item.events_behind} events behind (max {max_lag_events})")
        if item.seconds_behind > max_lag_seconds:
            found.append(f"{item.name} is {item.seconds_behind:.1f}s behind (max {max_lag_seconds:g})")
    return found


class Command(BaseCommand):
    help = "Show projection status and lag; --check for monitoring, --run to run async projections now."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--run", action="store_true", help="Run every async projection once now, then show the table.")
        parser.add_argument("--check", action="store_true",
                            help="Exit non-zero when a projection is failed or lags beyond the thresholds.")
        parser.add_argument("--max-lag-events", type=int, default=1000,
                            help="With --check: most events a projection may be behind (default 1000).")
        parser.add_argument("--max-lag-seconds", type=float, default=300.0,
                            help="With --check: oldest unapplied event age allowed, seconds (default 300).")

    def handle(self, *args, run: bool, check: bool, max_lag_events: int, max_lag_seconds: float, **options) -> None:
        if run:
            for proj in projections():
                if proj.mode != ASYNC:
                    continue
                report = run_projection(proj.name)
                note = " (busy: another runner holds it)" if report.busy else ""
                self.stdout.write(f"ran {proj.name}: {report.applied} applied, {report.dead_lettered} dead-lettered, "
                                  f"checkpoint {report.position}, {report.status}{note}")
        items = lag()
        self._table(items)
        if check:
            found = problems(items, max_lag_events=max_lag_events, max_lag_seconds=max_lag_seconds)
            if found:
                raise CommandError("unhealthy projections: " + "; ".join(found))
            self.stdout.write("all projections healthy")

    def _table(self, items: list[Lag]) -> None:
        rows = [COLUMNS, *(_row(item) for item in items)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        for index, row in enumerate(rows):
            cells = [cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
            self.stdout.write("  ".join(cells).rstrip())
            if index == 0:
                self.stdout.write("  ".join("-" * w for w in widths))
