"""``manage.py simulate_market --minutes N``: append N simulated 1m candles to every pair."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from market.ingest import IngestReport, simulate_minutes


class Command(BaseCommand):
    help = "Append the next N one-minute candles of the seeded simulated feed to every pair."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--minutes", type=int, default=60)
        parser.add_argument("--seed", type=int, default=None, help="Default: MARKET_SIMULATION_SEED.")

    def handle(self, *args: Any, minutes: int, seed: int | None, **options: Any) -> None:
        if not 1 <= minutes <= 10_000:
            raise CommandError("--minutes must be 1 to 10000")
        seed = settings.MARKET_SIMULATION_SEED if seed is None else seed
        report = simulate_minutes(minutes, seed=seed, now=timezone.now(), progress=self._progress)
        self.stdout.write(self.style.SUCCESS(f"{report.recorded} candles recorded in {report.batches} batches"))

    def _progress(self, pair: str, recorded: int, skipped: int, report: IngestReport) -> None:
        self.stdout.write(f"  {pair}: +{recorded}")
