"""Demo data of yield farming: the shipped protocol catalogue, listed through commands (idempotent)."""
from __future__ import annotations

from typing import Any

from .feed import SAMPLE_PROTOCOLS, load_protocols


def load(stdout: Any) -> None:
    """``LEDGERLINE_DEMO_LOADERS`` entry: list the sample protocols (a second run lists none)."""
    report = load_protocols(SAMPLE_PROTOCOLS)
    stdout.write(f"Yield farming:  {report.listed} protocols listed, {report.already} already there")
