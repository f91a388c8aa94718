"""``manage.py reconcile [checks…]``: run reconciliation checks now, print and record the results.

One call deep: :func:`cqrs_core.reconciliation.run_checks`. Every run is recorded like the beat
task's. ``--repair`` lets failed checks rebuild the projections they name (default: only the
checks configured to repair); ``--no-repair`` forbids it. Exits non-zero when a check failed
(even when it was then repaired: something was wrong).
"""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from cqrs_core.reconciliation import CheckNotFound, checks, run_checks


class Command(BaseCommand):
    help = "Run reconciliation checks now (all, or the named ones); exit non-zero when one fails."

    def add_arguments(self, parser) -> None:
        parser.add_argument("names", nargs="*", help="Check names (default: all).")
        parser.add_argument("--list", action="store_true", dest="list_checks", help="List the registered checks and exit.")
        repair = parser.add_mutually_exclusive_group()
        repair.add_argument("--repair", action="store_true", dest="repair", default=None,
                            help="Rebuild the projections a failed check names.")
        repair.add_argument("--no-repair", action="store_false", dest="repair", help="Never repair.")

    def handle(self, *args, names: list[str], list_checks: bool, repair: bool | None, **options) -> None:
        if list_checks:
            for check in checks():
                self.stdout.write(f"{check.name}: every {check.every:g}s, window {check.window:g}s, "
                                  f"repair {'yes' if check.repair else 'no'}")
            return
        try:
            runs = run_checks(names or None, repair=repair)
        except CheckNotFound as exc:
            raise CommandError(f"no check named {exc.args[0]!r}") from exc
        for run in runs:
            verdict = "ok" if run.ok else "FAILED" + (", repaired" if run.repaired else "")
            self.stdout.write(f"{run.check_name}: {verdict}")
            if not run.ok:
                self.stdout.write("  " + json.dumps(run.details, sort_keys=True, default=str))
        failed = [run.check_name for run in runs if not run.ok]
        if failed:
            raise CommandError(f"failed checks: {', '.join(failed)}")
