"""Feeding the catalogue: the shipped protocol list, and a seeded APY drift, both sent as commands.

The drift (``yield_farming.drift``) is deterministic; tick ``n`` counts ``YIELD_APY_DRIFT_SECONDS``
intervals since the epoch. Each tick's command id follows from ``(seed, n)``: a tick delivered
twice replays its first outcome instead of moving the APYs again.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from cqrs_core.bus import command_bus

from .catalogue import DriftApys, ListProtocol

SAMPLE_PROTOCOLS = Path(__file__).resolve().parent / "data" / "protocols.json"
#: Namespace of the loader's and the drift's command ids (stable across runs and processes).
FEED_NAMESPACE = uuid.UUID("0c6f7a8e-3b1d-4f5e-9a2c-7d8e9f0a1b2c")


@dataclass
class LoadReport:
    listed: int = 0
    already: int = 0


def read_protocols(path: Path | str = SAMPLE_PROTOCOLS) -> list[ListProtocol]:
    """The ``ListProtocol`` commands of a JSON file (a list of protocol objects; numbers as strings)."""
    with open(path, encoding="utf-8") as handle:
        rows: list[dict[str, Any]] = json.load(handle, parse_float=Decimal)
    return [ListProtocol(slug=r["slug"], name=r["name"], chain=r["chain"], asset=r["asset"], apy=Decimal(r["apy"]),
                         tvl=Decimal(r["tvl"]), audited=bool(r["audited"]), risk_score=int(r["risk_score"]))
            for r in rows]


def load_protocols(path: Path | str = SAMPLE_PROTOCOLS) -> LoadReport:
    """List every protocol of the file; those already listed are left as they are."""
    report = LoadReport()
    for command in read_protocols(path):
        result = command_bus.dispatch(command, command_id=uuid.uuid5(FEED_NAMESPACE, f"list:{command.slug}"))
        if result.data.get("listed") and not result.replayed:
            report.listed += 1
        else:
            report.already += 1
    return report


def drift(now: dt.datetime, *, seed: int, interval: float, sigma: Decimal) -> int:
    """Record the drift of the tick ``now`` falls in; returns how many APYs moved (0 for a repeated tick)."""
    tick = int(now.timestamp() // interval)
    as_of = dt.datetime.fromtimestamp(tick * interval, tz=dt.timezone.utc)
    result = command_bus.dispatch(DriftApys(seed=seed, tick=tick, sigma=sigma, as_of=as_of),
                                  command_id=uuid.uuid5(FEED_NAMESPACE, f"drift:{seed}:{tick}"))
    return 0 if result.replayed else int(result.data["changed"])
