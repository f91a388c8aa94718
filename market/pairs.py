"""The pairs the market knows: a fixed registry, with the parameters the simulated feed uses."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .errors import UnknownPair


@dataclass(frozen=True, kw_only=True)
class Pair:
    """A traded pair and how the simulation moves it (``sigma``: hourly volatility of log price)."""

    symbol: str
    base: str
    quote: str
    is_stablecoin: bool = False
    start_price: Decimal
    price_places: int
    sigma: Decimal
    hourly_quote_volume: Decimal


def _pair(base: str, start: str, places: int, sigma: str, volume: str, *, stable: bool = False) -> Pair:
    return Pair(symbol=f"{base}/USD", base=base, quote="USD", is_stablecoin=stable, start_price=Decimal(start),
                price_places=places, sigma=Decimal(sigma), hourly_quote_volume=Decimal(volume))


PAIRS: tuple[Pair, ...] = (
    _pair("BTC", "64000", 2, "0.006", "40000000"),
    _pair("ETH", "3200", 2, "0.008", "18000000"),
    _pair("SOL", "145", 3, "0.012", "6000000"),
    _pair("BNB", "580", 2, "0.007", "3000000"),
    _pair("XRP", "0.52", 5, "0.010", "2500000"),
    _pair("ADA", "0.45", 5, "0.011", "1200000"),
    _pair("DOGE", "0.12", 6, "0.015", "2000000"),
    _pair("AVAX", "28", 3, "0.013", "900000"),
    _pair("DOT", "6.5", 4, "0.011", "700000"),
    _pair("LINK", "14", 4, "0.012", "800000"),
    _pair("POL", "0.55", 5, "0.013", "500000"),
    _pair("LTC", "72", 3, "0.009", "600000"),
    _pair("TRX", "0.12", 6, "0.007", "650000"),
    _pair("ATOM", "7.5", 4, "0.012", "400000"),
    _pair("UNI", "8.2", 4, "0.014", "450000"),
    _pair("XLM", "0.10", 6, "0.010", "300000"),
    _pair("NEAR", "5.2", 4, "0.016", "550000"),
    _pair("USDT", "1", 5, "0.0002", "25000000", stable=True),
    _pair("USDC", "1", 5, "0.0002", "9000000", stable=True),
    _pair("DAI", "1", 5, "0.0003", "800000", stable=True),
)
_BY_SYMBOL = {p.symbol: p for p in PAIRS}


def normalise_symbol(raw: str) -> str:
    """``"btc-usd"``, ``"BTC_USD"`` and ``"BTC/USD"`` all name ``"BTC/USD"`` (URLs avoid the slash)."""
    return raw.strip().upper().replace("-", "/").replace("_", "/")


def get_pair(symbol: str) -> Pair | None:
    """The registered pair of a symbol in any accepted spelling; None when unknown."""
    return _BY_SYMBOL.get(normalise_symbol(symbol))


def require_pair(symbol: str) -> Pair:
    """The registered pair of a symbol, or ``UnknownPair`` (400 ``unknown_pair``)."""
    pair = get_pair(symbol)
    if pair is None:
        raise UnknownPair(f"unknown pair {symbol!r}", pair=symbol)
    return pair


def known_pairs() -> list[str]:
    """Symbols of every pair the market knows, sorted (``"BTC/USD"``...)."""
    return sorted(_BY_SYMBOL)


def stablecoins() -> frozenset[str]:
    return frozenset(p.symbol for p in PAIRS if p.is_stablecoin)
