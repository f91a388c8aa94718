"""Latest market prices, read through ``market.queries`` (another context's public functions).

Read-only: command handlers get a :class:`MarketSnapshot` as a lookup, queries call it at read time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

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
    """Known pairs (a fixed registry) and their latest prices, in one query whatever the number of pairs."""
    from market.queries import known_pairs, latest_prices

    pairs = frozenset(known_pairs())
    return MarketSnapshot(pairs, {pair: price for pair, price in latest_prices().items() if pair in pairs})
