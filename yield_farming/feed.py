"""Feeding the catalogue: the shipped protocol list, and a seeded APY drift, both sent as commands.

The drift is deterministic: the APY of a protocol at tick ``n`` is its APY before times
``exp(sigma * z)``, where ``z`` is a normal draw seeded by ``(seed, slug, n)`` (``n`` counts
``YIELD_APY_DRIFT_SECONDS`` intervals since the epoch), rounded to 0.01 and kept within
[``MIN_APY``, ``MAX_APY``]. Each tick's command id follows from ``(seed, n)``: a tick delivered
twice replays its first outcome instead of moving the APYs again.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import random
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from cqrs_core.bus import command_bus
from market.simulation import normal

from .catalogue import ApyChange, ListProtocol, RecordApyChanges, current_catalogue

SAMPLE_PROTOCOLS = Path(__file__).resolve().parent / "data" / "protocols.json"
#: Namespace of the loader's and the drift's command ids (stable across runs and processes).
FEED_NAMESPACE = uuid.UUID("0c6f7a8e-3b1d-4f5e-9a2c-7d8e9f0a1b2c")
APY_PLACES = Decimal("0.01")
MIN_APY, MAX_APY = Decimal("0.01"), Decimal("500")
_CTX = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN)


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
        if result.data.get("listed"):
            report.listed += 1
        else:
            report.already += 1
    return report


def drifted(apy: Decimal, *, seed: int, slug: str, tick: int, sigma: Decimal) -> Decimal:
    """The APY after one tick of the seeded drift (see the module docstring)."""
    rng = random.Random(f"{seed}:{slug}:{tick}")
    with decimal.localcontext(_CTX):
        moved = (apy * (sigma * normal(rng)).exp()).quantize(APY_PLACES)
    return min(MAX_APY, max(MIN_APY, moved))


def drift(now: dt.datetime, *, seed: int, interval: float, sigma: Decimal) -> int:
    """Record the drift of the tick ``now`` falls in; returns how many APYs moved (0 for a repeated tick)."""
    tick = int(now.timestamp() // interval)
    catalogue = current_catalogue()
    changes = tuple(ApyChange(slug=slug, apy=drifted(info.apy, seed=seed, slug=slug, tick=tick, sigma=sigma))
                    for slug, info in sorted(catalogue.protocols.items()))
    if not changes:
        return 0
    result = command_bus.dispatch(RecordApyChanges(changes=changes, as_of=now),
                                  command_id=uuid.uuid5(FEED_NAMESPACE, f"drift:{seed}:{tick}"))
    return 0 if result.replayed else int(result.data["changed"])
