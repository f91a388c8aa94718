"""Demo data of the market: the shipped sample CSV, loaded once (loading again records nothing)."""
from __future__ import annotations

from typing import Any

from .ingest import SAMPLE_CSV, load_csv


def load(stdout: Any) -> None:
    """``LEDGERLINE_DEMO_LOADERS`` entry: record the sample candles of every pair."""
    report = load_csv(SAMPLE_CSV)
    stdout.write(f"Market:         {report.recorded} candles recorded, {report.skipped} already there "
                 f"({len(report.per_pair)} pairs)")
