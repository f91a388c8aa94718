"""``manage.py rebuild_projections [names…]``: reset projections and replay them from the store.

One call deep: the work is :func:`cqrs_core.projections.rebuild`; this command parses the
arguments, asks for confirmation, shows progress and prints the report.

* No names: every registered projection.
* ``--dry-run`` only counts the events that would be replayed; nothing changes.
* Without ``--noinput`` it asks for confirmation on a terminal and refuses (exit code 2) when
  stdin is not a terminal, so a script cannot empty read models by accident.
* A rebuild already running (fresh heartbeat) is refused with a non-zero exit.
"""
from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from cqrs_core.projections import (
    Progress, ProjectionNotFound, RebuildAlreadyRunning, get_projection, projections, rebuild,
)

#: Without a terminal, one progress line at most this often (seconds) ...
PLAIN_EVERY_SECONDS = 5.0
#: ... or every this many batches, whichever comes first.
PLAIN_EVERY_BATCHES = 50
#: On a terminal, redraw the progress line at most this often (seconds).
TTY_REDRAW_SECONDS = 0.1


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def describe(progress: Progress) -> str:
    """One line: name, percent, positions done of total, events/s, ETA."""
    return (f"{progress.name}: {progress.percent:5.1f}% {progress.done}/{progress.total} positions, "
            f"{progress.applied} applied, {progress.rate:,.0f} events/s, ETA {_duration(progress.eta_seconds)}")


class _ProgressPrinter:
    """The ``progress`` callback: a single redrawn line on a terminal, plain lines otherwise."""

    def __init__(self, out, tty: bool) -> None:
        self.out, self.tty = out, tty
        self.calls = 0
        self.last_written = 0.0
        self.last_line = ""
        self.pending_newline = False

    def __call__(self, progress: Progress) -> None:
        self.calls += 1
        now = time.monotonic()
        done = progress.percent >= 100.0
        if self.tty:
            if done or now - self.last_written >= TTY_REDRAW_SECONDS:
                line = describe(progress)
                pad = " " * max(0, len(self.last_line) - len(line))
                self.out.write(f"\r{line}{pad}", ending="")
                self.out.flush()
                self.last_line, self.last_written, self.pending_newline = line, now, True
            return
        if done or self.calls % PLAIN_EVERY_BATCHES == 1 or now - self.last_written >= PLAIN_EVERY_SECONDS:
            line = describe(progress)
            if line != self.last_line:
                self.out.write(line)
                self.last_line, self.last_written = line, now

    def finish(self) -> None:
        if self.pending_newline:
            self.out.write("")
            self.pending_newline = False


class Command(BaseCommand):
    help = "Rebuild projections (all, or the named ones) by replaying the event store."

    def add_arguments(self, parser) -> None:
        parser.add_argument("names", nargs="*", help="Projection names (default: all).")
        parser.add_argument("--from-position", type=int, default=0,
                            help="Replay after this position, keeping the read models (default 0: reset and replay all).")
        parser.add_argument("--batch-size", type=int, default=None, help="Events per transaction (default: the projection's).")
        parser.add_argument("--dry-run", action="store_true", help="Only count the events that would be replayed.")
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive",
                            help="Do not ask for confirmation.")

    def handle(self, *args, names: list[str], from_position: int, batch_size: int | None, dry_run: bool,
               interactive: bool, **options) -> None:
        if from_position < 0:
            raise CommandError("--from-position must be 0 or more")
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            selected = [get_projection(n).name for n in names] if names else [p.name for p in projections()]
        except ProjectionNotFound as exc:
            raise CommandError(str(exc)) from exc

        if dry_run:
            for name in selected:
                report = rebuild(name, from_position=from_position, dry_run=True)
                self.stdout.write(f"{name}: would replay {report.events} events after position {from_position} (dry run)")
            return

        if interactive:
            self._confirm(selected, from_position)

        failures = []
        for name in selected:
            printer = _ProgressPrinter(self.stdout, self._stdout_is_tty())
            try:
                report = rebuild(name, from_position=from_position, batch_size=batch_size, progress=printer)
            except RebuildAlreadyRunning as exc:
                printer.finish()
                self.stderr.write(f"{name}: {exc} (refused; wait for it or let its heartbeat expire)")
                failures.append(name)
                continue
            printer.finish()
            outcome = "cancelled, now paused" if report.cancelled else report.status
            self.stdout.write(
                f"{name}: {report.applied} applied, {report.dead_lettered} dead-lettered, "
                f"checkpoint {report.position}, {outcome}, {report.seconds:.1f}s")
            if report.cancelled or report.status != "running":
                failures.append(name)
        if failures:
            raise CommandError(f"not rebuilt: {', '.join(failures)}")

    def _stdout_is_tty(self) -> bool:
        try:
            return self.stdout.isatty()
        except (AttributeError, ValueError):
            return False

    def _confirm(self, selected: list[str], from_position: int) -> None:
        try:
            tty = sys.stdin.isatty()
        except (AttributeError, ValueError):
            tty = False
        if not tty:
            raise CommandError("stdin is not a terminal: pass --noinput to rebuild without confirmation",
                               returncode=2)
        what = "emptied and replayed from the start" if from_position == 0 else f"replayed after position {from_position}"
        self.stdout.write(f"These projections will be {what}: {', '.join(selected)}")
        answer = input("Type 'yes' to continue: ")
        if answer.strip().lower() != "yes":
            raise CommandError("rebuild cancelled", returncode=2)
