"""``manage.py verify_projections [names…]``: compare read models with a replay of the store.

One call deep: :func:`cqrs_core.reconciliation.verify` replays each projection up to its
checkpoint in a transaction that is rolled back, so nothing changes. Prints the missing, extra
and changed rows by primary key (models with a generated key: by their other columns) and
exits non-zero when any projection differs.
"""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from cqrs_core.projections import ProjectionNotFound, get_projection, projections
from cqrs_core.reconciliation import MAX_LISTED, Verification, verify


class Command(BaseCommand):
    help = "Replay projections into scratch (rolled back) and print how their read models differ."

    def add_arguments(self, parser) -> None:
        parser.add_argument("names", nargs="*", help="Projection names (default: all).")

    def handle(self, *args, names: list[str], **options) -> None:
        try:
            selected = [get_projection(n).name for n in names] if names else [p.name for p in projections()]
        except ProjectionNotFound as exc:
            raise CommandError(str(exc)) from exc
        differing = []
        for name in selected:
            result = verify(name)
            self._report(result)
            if not result.ok:
                differing.append(name)
        if differing:
            raise CommandError(f"read models differ from a replay: {', '.join(differing)}")
        self.stdout.write(f"all {len(selected)} projection(s) equal their replay")

    def _report(self, result: Verification) -> None:
        verdict = "ok" if result.ok else "DIFFERS"
        self.stdout.write(f"{result.name}: {verdict} ({result.events} events replayed up to checkpoint "
                          f"{result.checkpoint}, {result.seconds:.2f}s)")
        for diff in result.models:
            if not diff.count:
                continue
            self.stdout.write(f"  {diff.model}: {len(diff.missing)} missing, {len(diff.extra)} extra, "
                              f"{len(diff.changed)} changed")
            for row in diff.missing[:MAX_LISTED]:
                self.stdout.write(f"    missing {_show(row)}")
            for row in diff.extra[:MAX_LISTED]:
                self.stdout.write(f"    extra   {_show(row)}")
            for change in diff.changed[:MAX_LISTED]:
                fields = ", ".join(f"{f}: live {v['live']} != replay {v['replay']}" for f, v in change["fields"].items())
                self.stdout.write(f"    changed {change['pk']}: {fields}")
        for error in result.replay_errors[:MAX_LISTED]:
            self.stdout.write(f"  replay error at {error}")


def _show(row: object) -> str:
    return row if isinstance(row, str) else json.dumps(row, sort_keys=True, default=str)
