"""Latest market prices, read through ``market.queries`` (another context) when it is installed.

Read-only: command handlers get a :class:`MarketSnapshot` as a lookup, queries call it at read
time. Without the market context no pair is known, so trades are refused as ``unknown_pair``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

QUOTE = "USD"


@dataclass(frozen=True)
class MarketSnapshot:
    """The known pairs and the latest price of each that has one."""

    pairs: frozenset[str] = frozenset()
    prices: dict[str, Decimal] = field(default_factory=dict)

    def price_of(self, asset: str) -> Decimal | None:
        return self.prices.get(pair_of(asset))


def pair_of(asset: str) -> str:
    """The USD pair of an asset (cash is USD, so only ``<asset>/USD`` pairs trade)."""
    return f"{asset}/{QUOTE}"


def snapshot() -> MarketSnapshot:
    """Known pairs and their latest prices now; empty when the market context is absent."""
    try:
        from market.queries import latest_price
    except ImportError:
        return MarketSnapshot()
    try:
        from market.queries import known_pairs
    except ImportError:
        from market.pairs import known_pairs
    pairs = frozenset(_symbol(p) for p in known_pairs())
    prices = {pair: price for pair in pairs if (price := latest_price(pair)) is not None}
    return MarketSnapshot(pairs, {pair: Decimal(str(price)) for pair, price in prices.items()})


def _symbol(pair: Any) -> str:
    """A pair as ``BASE/QUOTE`` whether the market context gives strings or objects."""
    if isinstance(pair, str):
        return pair
    return str(getattr(pair, "symbol", None) or getattr(pair, "pair", None) or pair)
