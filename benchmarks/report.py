"""Figures of a run: latency statistics, the printed table and the JSON file."""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Figure:
    """One measured figure, with the raw limit of the same run it should be read against.

    ``value`` is None only for a row that cannot be measured yet; ``note`` then says why.
    """

    key: str
    scenario: str
    label: str
    value: float | None
    unit: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    limit: str = ""
    target: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Limit:
    """A raw limit of the machine, measured in the same run."""

    key: str
    label: str
    value: float
    unit: str
    p50_ms: float | None = None

    def short(self) -> str:
        latency = f", p50 {_num(self.p50_ms)} ms" if self.p50_ms is not None else ""
        return f"{self.label}: {_num(self.value)} {self.unit}{latency}"


def latency_figure(key: str, scenario: str, label: str, latencies_ms: Sequence[float], *, count: int, seconds: float,
                   unit: str, limit: str = "", target: str = "", note: str = "", **extra: Any) -> Figure:
    """A throughput figure (``count`` operations in ``seconds``) with the p50/p99 of its latencies."""
    rate = count / seconds if seconds > 0 else 0.0
    return Figure(key, scenario, label, rate, unit, percentile(latencies_ms, 50), percentile(latencies_ms, 99),
                  limit, target, note, {"count": count, "seconds": round(seconds, 3), **extra})


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(figures: Sequence[Figure], limits: dict[str, Limit]) -> str:
    """The figures as a Markdown table (it goes into docs/PERFORMANCE.md as is)."""
    lines = ["| # | figure | value | p50 ms | p99 ms | raw limit, same run | target | note |",
             "|---|---|---:|---:|---:|---|---|---|"]
    for f in figures:
        value = "not yet" if f.value is None else f"{_num(f.value)} {f.unit}"
        limit = "; ".join(limits[k].short() for k in f.limit.split(",") if k in limits) if f.limit else ""
        lines.append(f"| {f.scenario} | {f.label} | {value} | {_num(f.p50_ms)} | {_num(f.p99_ms)} | {limit} | "
                     f"{f.target} | {f.note} |")
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], figures: Sequence[Figure], limits: dict[str, Limit]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"meta": meta, "limits": {k: asdict(v) for k, v in limits.items()},
            "figures": {f.key: asdict(f) for f in figures}}
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
