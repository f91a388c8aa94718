"""The protocol catalogue's commands: list (loaders), update (operators) and record APY moves (the feed).

All decide on one stream, ``yield_farming-catalogue``; reading it back by folding that stream
(:func:`current_catalogue`) is never behind, unlike the ``Protocol`` read model.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields, replace
from decimal import Decimal

from cqrs_core.commands import Command, CommandContext, Decision, handles
from cqrs_core.events import Event
from portfolio.commands import operators_only

from .drift import drifted
from .errors import InvalidProtocol, ProtocolNotFound
from .events import ProtocolApyChanged, ProtocolListed, ProtocolUpdated
from .state import CATALOGUE, CATALOGUE_STREAM, Catalogue, ProtocolInfo

MAX_RISK_SCORE = 10


@dataclass(frozen=True, kw_only=True)
class ListProtocol(Command, name="yield_farming.ListProtocol"):
    slug: str
    name: str
    chain: str
    asset: str
    apy: Decimal
    tvl: Decimal
    audited: bool
    risk_score: int


@dataclass(frozen=True, kw_only=True)
class UpdateProtocol(Command, name="yield_farming.UpdateProtocol"):
    """Fields left None keep their value."""

    slug: str
    name: str | None = None
    chain: str | None = None
    asset: str | None = None
    apy: Decimal | None = None
    tvl: Decimal | None = None
    audited: bool | None = None
    risk_score: int | None = None


@dataclass(frozen=True, kw_only=True)
class ApyChange:
    slug: str
    apy: Decimal


@dataclass(frozen=True, kw_only=True)
class RecordApyChanges(Command, name="yield_farming.RecordApyChanges"):
    changes: tuple[ApyChange, ...]
    as_of: dt.datetime


@dataclass(frozen=True, kw_only=True)
class DriftApys(Command, name="yield_farming.DriftApys"):
    """One tick of the simulated feed: the same (seed, tick) always decides the same moves."""

    seed: int
    tick: int
    sigma: Decimal
    as_of: dt.datetime


def _catalogue_stream(cmd: Command) -> str:
    return CATALOGUE_STREAM


def current_catalogue() -> Catalogue:
    """The catalogue as its stream says now (an empty one before the first listing)."""
    from cqrs_core.bus import load
    from cqrs_core.commands import handler_for

    state, _ = load(handler_for(ListProtocol), CATALOGUE_STREAM)
    return state or Catalogue()


def check_figures(info: ProtocolInfo) -> None:
    """APY and TVL at least zero, risk score from 1 to 10, names not blank."""
    if info.apy < 0 or info.tvl < 0 or not 1 <= info.risk_score <= MAX_RISK_SCORE:
        raise InvalidProtocol(slug=info.slug, apy=str(info.apy), tvl=str(info.tvl), risk_score=info.risk_score)
    if not all(v.strip() for v in (info.slug, info.name, info.chain, info.asset)):
        raise InvalidProtocol("slug, name, chain and asset must not be blank", slug=info.slug)


@handles(ListProtocol, stream=_catalogue_stream, aggregate=CATALOGUE, authorize=operators_only)
def list_protocol(catalogue: Catalogue | None, cmd: ListProtocol, ctx: CommandContext) -> Decision:
    """Add a protocol; one already listed is left as it is (loading the catalogue again records nothing)."""
    info = ProtocolInfo(**{f.name: getattr(cmd, f.name) for f in fields(ProtocolInfo)})
    check_figures(info)
    if catalogue is not None and catalogue.get(cmd.slug) is not None:
        return Decision([], {"slug": cmd.slug, "listed": False})
    return Decision([ProtocolListed(**{f.name: getattr(info, f.name) for f in fields(ProtocolInfo)})],
                    {"slug": cmd.slug, "listed": True})


@handles(UpdateProtocol, stream=_catalogue_stream, aggregate=CATALOGUE, authorize=operators_only)
def update_protocol(catalogue: Catalogue | None, cmd: UpdateProtocol, ctx: CommandContext) -> Decision:
    """Operators change a protocol's figures; no actual change records nothing."""
    current = catalogue.get(cmd.slug) if catalogue is not None else None
    if current is None:
        raise ProtocolNotFound(slug=cmd.slug)
    changes = {f.name: getattr(cmd, f.name) for f in fields(ProtocolInfo) if getattr(cmd, f.name) is not None}
    info = replace(current, **changes)
    check_figures(info)
    body = {f.name: getattr(info, f.name) for f in fields(ProtocolInfo)}
    if info == current:
        return Decision([], body)
    return Decision([ProtocolUpdated(**body, updated_by=ctx.actor.user_id)], body)


@handles(RecordApyChanges, stream=_catalogue_stream, aggregate=CATALOGUE, authorize=operators_only)
def record_apy_changes(catalogue: Catalogue | None, cmd: RecordApyChanges, ctx: CommandContext) -> Decision:
    """Record the APYs that moved; unknown slugs and unchanged APYs are skipped."""
    events: list[Event] = []
    for change in cmd.changes:
        info = catalogue.get(change.slug) if catalogue is not None else None
        if info is None or info.apy == change.apy:
            continue
        if change.apy < 0:
            raise InvalidProtocol(slug=change.slug, apy=str(change.apy))
        events.append(ProtocolApyChanged(slug=change.slug, apy=change.apy, previous_apy=info.apy, as_of=cmd.as_of))
    return Decision(events, {"changed": len(events)})


@handles(DriftApys, stream=_catalogue_stream, aggregate=CATALOGUE, authorize=operators_only)
def drift_apys(catalogue: Catalogue | None, cmd: DriftApys, ctx: CommandContext) -> Decision:
    """Move every listed APY by the seeded drift of the tick (see ``yield_farming.drift``)."""
    changes = tuple(ApyChange(slug=slug, apy=drifted(info.apy, seed=cmd.seed, slug=slug, tick=cmd.tick,
                                                     sigma=cmd.sigma))
                    for slug, info in sorted((catalogue or Catalogue()).protocols.items()))
    return record_apy_changes(catalogue, RecordApyChanges(changes=changes, as_of=cmd.as_of), ctx)
