"""The protocol catalogue aggregate: every listed protocol's figures, folded from ``yield_farming-catalogue``."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from cqrs_core.commands import Aggregate
from cqrs_core.events import Event

from .events import ProtocolApyChanged, ProtocolListed, ProtocolUpdated

CATALOGUE_STREAM = "yield_farming-catalogue"


@dataclass(frozen=True)
class ProtocolInfo:
    """One protocol: APY in percent a year, TVL in USD, risk score 1 (safest) to 10."""

    slug: str
    name: str
    chain: str
    asset: str
    apy: Decimal
    tvl: Decimal
    audited: bool
    risk_score: int


@dataclass(frozen=True)
class Catalogue:
    protocols: dict[str, ProtocolInfo] = field(default_factory=dict)

    def get(self, slug: str) -> ProtocolInfo | None:
        return self.protocols.get(slug)


def evolve(state: Catalogue | None, event: Event) -> Catalogue | None:
    catalogue = state or Catalogue()
    match event:
        case ProtocolListed() | ProtocolUpdated():
            info = ProtocolInfo(event.slug, event.name, event.chain, event.asset, event.apy, event.tvl,
                                event.audited, event.risk_score)
            return Catalogue({**catalogue.protocols, event.slug: info})
        case ProtocolApyChanged() if event.slug in catalogue.protocols:
            info = replace(catalogue.protocols[event.slug], apy=event.apy)
            return Catalogue({**catalogue.protocols, event.slug: info})
    return state


CATALOGUE = Aggregate("yield_farming.catalogue", evolve=evolve, state_type=Catalogue)
