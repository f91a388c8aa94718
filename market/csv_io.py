"""The CSV layout of candles: ccxt's OHLCV rows plus a pair column.

``timestamp,open,high,low,close,volume,pair`` with ``timestamp`` the candle's open time in
milliseconds since the epoch (UTC), prices in the quote currency and ``volume`` in the base
currency, as ccxt's ``fetch_ohlcv`` returns them. A header row is optional; without one the
columns are positional and ``pair`` may be missing (then the loader is told the pair). One file
holds one timeframe; each pair's rows must be in time order.
"""
from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import TextIO

from .events import CandleData

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume", "pair")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)


class CsvFormatError(ValueError):
    """A row of the file does not follow the layout."""


def write_csv(rows: Iterable[tuple[str, CandleData]], out: TextIO) -> int:
    """Write ``(pair, candle)`` rows with a header; returns how many rows it wrote."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for pair, c in rows:
        writer.writerow([_millis(c.open_time), c.open, c.high, c.low, c.close, c.volume, pair])
        count += 1
    return count


def read_csv(lines: TextIO, *, pair: str | None = None) -> Iterator[tuple[str, CandleData]]:
    """``(pair, candle)`` per row; with ``pair``, rows of other pairs are left out (or all rows are it)."""
    reader = csv.reader(lines)
    columns: dict[str, int] = {name: i for i, name in enumerate(COLUMNS)}
    for number, row in enumerate(reader, start=1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and not row[0].strip().isdigit():
            columns = _header(row)
            continue
        row_pair = row[columns["pair"]].strip() if "pair" in columns and columns["pair"] < len(row) else None
        if row_pair is None and pair is None:
            raise CsvFormatError(f"line {number}: no pair column; name the pair to load")
        if pair is not None and row_pair is not None and row_pair != pair:
            continue
        yield row_pair or pair or "", _candle(row, columns, number)


def _header(row: list[str]) -> dict[str, int]:
    names = {name.strip().lower(): i for i, name in enumerate(row)}
    missing = [c for c in COLUMNS[:6] if c not in names]
    if missing:
        raise CsvFormatError(f"line 1: header lacks {', '.join(missing)}")
    return {c: names[c] for c in COLUMNS if c in names}


def _candle(row: list[str], columns: dict[str, int], number: int) -> CandleData:
    try:
        cells = {name: row[i].strip() for name, i in columns.items() if name != "pair"}
    except IndexError:
        raise CsvFormatError(f"line {number}: expected {len(columns)} columns, got {len(row)}") from None
    if not cells["timestamp"].isdigit() or int(cells["timestamp"]) % 1000:
        raise CsvFormatError(f"line {number}: timestamp must be whole seconds in milliseconds")
    bad = [name for name in COLUMNS[1:6] if not _NUMBER.fullmatch(cells[name])]
    if bad:
        raise CsvFormatError(f"line {number}: not a number: {', '.join(bad)}")
    return CandleData(
        open_time=dt.datetime.fromtimestamp(int(cells["timestamp"]) // 1000, tz=dt.timezone.utc),
        open=Decimal(cells["open"]), high=Decimal(cells["high"]), low=Decimal(cells["low"]),
        close=Decimal(cells["close"]), volume=Decimal(cells["volume"]),
    )


def _millis(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 1000
