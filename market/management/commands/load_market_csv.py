"""``manage.py load_market_csv PATH [--pair P] [--timeframe 1h]``: record candles from a ccxt-layout CSV."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cqrs_core.errors import DomainError
from market.csv_io import CsvFormatError
from market.ingest import DEFAULT_BATCH, IngestReport, load_csv
from market.timeframes import TIMEFRAMES


class Command(BaseCommand):
    help = "Load candles from a CSV (timestamp ms, open, high, low, close, volume[, pair]); loading twice is a no-op."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path")
        parser.add_argument("--pair", help="Only this pair's rows; required when the file has no pair column.")
        parser.add_argument("--timeframe", default="1h", choices=sorted(TIMEFRAMES))
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)

    def handle(self, *args: Any, path: str, pair: str | None, timeframe: str, batch_size: int,
               **options: Any) -> None:
        try:
            report = load_csv(path, pair=pair, timeframe=timeframe, batch_size=batch_size, progress=self._progress)
        except (OSError, CsvFormatError, DomainError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"{report.recorded} candles recorded, {report.skipped} already there, in {report.batches} batches"))

    def _progress(self, pair: str, recorded: int, skipped: int, report: IngestReport) -> None:
        self.stdout.write(f"  {pair}: +{recorded} recorded, {skipped} skipped "
                          f"(total {report.recorded + report.skipped} rows)")
