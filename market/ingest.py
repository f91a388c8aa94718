"""Feeding the market: CSV files and the simulated feed, sent as ``RecordCandles`` batches."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cqrs_core.bus import command_bus, load
from cqrs_core.commands import handler_for

from .commands import RecordCandles, market_stream
from .csv_io import read_csv
from .events import CandleData
from .pairs import PAIRS, Pair, require_pair
from .simulation import simulate
from .state import PairFeed

DEFAULT_BATCH = 500
SAMPLE_CSV = Path(__file__).resolve().parent / "data" / "sample_ohlcv.csv"
#: The shipped CSV: 7 days of hourly candles of every pair, ending here (exclusive).
SAMPLE_END = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
SAMPLE_HOURS = 7 * 24
MINUTE = dt.timedelta(minutes=1)


@dataclass
class IngestReport:
    """What a load or tick did: candles recorded and skipped as already there, per pair too."""

    recorded: int = 0
    skipped: int = 0
    batches: int = 0
    position: int | None = None
    per_pair: dict[str, int] = field(default_factory=dict)


Progress = Callable[[str, int, int, IngestReport], None]


def record(pair: str, timeframe: str, candles: list[CandleData], report: IngestReport,
           progress: Progress | None = None) -> None:
    """Send one batch as a ``RecordCandles`` command and add its outcome to ``report``."""
    result = command_bus.dispatch(RecordCandles(pair=pair, timeframe=timeframe, candles=tuple(candles)))
    recorded, skipped = int(result.data["recorded"]), int(result.data["skipped"])
    report.recorded += recorded
    report.skipped += skipped
    report.batches += 1
    report.per_pair[pair] = report.per_pair.get(pair, 0) + recorded
    report.position = result.position or report.position
    if progress is not None:
        progress(pair, recorded, skipped, report)


def load_rows(rows: Iterable[tuple[str, CandleData]], *, timeframe: str = "1h", batch_size: int = DEFAULT_BATCH,
              progress: Progress | None = None) -> IngestReport:
    """Record ``(pair, candle)`` rows in per-pair batches; rows already recorded are skipped."""
    report = IngestReport()
    pending: dict[str, list[CandleData]] = {}
    for symbol, candle in rows:
        pair = require_pair(symbol)
        batch = pending.setdefault(pair.symbol, [])
        batch.append(candle)
        if len(batch) >= batch_size:
            record(pair.symbol, timeframe, pending.pop(pair.symbol), report, progress)
    for symbol, batch in pending.items():
        record(symbol, timeframe, batch, report, progress)
    return report


def load_csv(path: Path | str, *, pair: str | None = None, timeframe: str = "1h", batch_size: int = DEFAULT_BATCH,
             progress: Progress | None = None) -> IngestReport:
    """Load a ccxt-layout CSV (see ``market.csv_io``); idempotent: a second load records nothing."""
    symbol = require_pair(pair).symbol if pair else None
    with open(path, newline="", encoding="utf-8") as lines:
        return load_rows(read_csv(lines, pair=symbol), timeframe=timeframe, batch_size=batch_size,
                         progress=progress)


def feed_state(pair: str) -> PairFeed | None:
    """How far a pair's recorded candles reach, folded from its stream (never behind, unlike a read model)."""
    state, _ = load(handler_for(RecordCandles), market_stream(pair))
    return state


def simulate_minutes(minutes: int, *, seed: int, now: dt.datetime, pairs: Iterable[Pair] = PAIRS,
                     progress: Progress | None = None) -> IngestReport:
    """Append ``minutes`` simulated 1m candles to each pair after its last candle (may run ahead of ``now``)."""
    report = IngestReport()
    for pair in pairs:
        state = feed_state(pair.symbol)
        start = state.covered_until if state else _floor_minute(now) - minutes * MINUTE
        candles = simulate(pair, seed=seed, start=start, count=minutes, timeframe="1m",
                           previous_close=state.last_close if state else None)
        for i in range(0, len(candles), DEFAULT_BATCH):
            record(pair.symbol, "1m", candles[i:i + DEFAULT_BATCH], report, progress)
    return report


def tick(now: dt.datetime, *, seed: int, max_candles: int = 60, pairs: Iterable[Pair] = PAIRS) -> IngestReport:
    """Append each pair's closed 1m candles up to ``now``; a gap longer than ``max_candles`` is left a gap."""
    report = IngestReport()
    end = _floor_minute(now)
    for pair in pairs:
        state = feed_state(pair.symbol)
        start = max(state.covered_until, end - max_candles * MINUTE) if state else end - max_candles * MINUTE
        count = int((end - start) / MINUTE)
        if count > 0:
            candles = simulate(pair, seed=seed, start=start, count=count, timeframe="1m",
                               previous_close=state.last_close if state else None)
            record(pair.symbol, "1m", candles, report)
    return report


def sample_rows(seed: int) -> list[tuple[str, CandleData]]:
    """The rows of the shipped CSV: every pair's hourly candles for the week before ``SAMPLE_END``."""
    start = SAMPLE_END - SAMPLE_HOURS * dt.timedelta(hours=1)
    return [(p.symbol, c) for p in PAIRS for c in simulate(p, seed=seed, start=start, count=SAMPLE_HOURS)]


def _floor_minute(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(second=0, microsecond=0)
