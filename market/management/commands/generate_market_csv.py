"""``manage.py generate_market_csv [PATH] [--seed N]``: write the sample candles CSV (no network)."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from market.csv_io import write_csv
from market.ingest import SAMPLE_CSV, sample_rows


class Command(BaseCommand):
    help = "Write a week of simulated hourly candles of every pair as a ccxt-layout CSV (default: the shipped one)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", default=str(SAMPLE_CSV))
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, path: str, seed: int, **options: Any) -> None:
        with open(path, "w", newline="", encoding="utf-8") as out:
            count = write_csv(sample_rows(seed), out)
        self.stdout.write(f"wrote {count} candles to {path}")
