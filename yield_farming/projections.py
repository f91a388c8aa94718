"""Projections of yield farming: the protocol catalogue, and strategies with their positions."""
from __future__ import annotations

from cqrs_core.events import Event, RecordedEvent
from cqrs_core.projections import projection
from cqrs_core.queries import invalidate
from cqrs_core.sagas import saga_id_for_event
from portfolio.events import ReservationReleased

from .events import (
    ProtocolApyChanged, ProtocolListed, ProtocolUpdated, YieldPositionClosed, YieldPositionOpened,
    YieldStrategyExecutionRequested,
)
from .models import Protocol, YieldPosition, YieldStrategy
from .sagas import YieldFarmingSaga

PROTOCOLS_SCOPE = "yield_farming:protocols"
FIGURES = ("name", "chain", "asset", "apy", "tvl", "audited", "risk_score")


@projection("yield_farming.protocols", events=[ProtocolListed, ProtocolUpdated, ProtocolApyChanged],
            read_models=[Protocol])
def project_protocols(event: Event, recorded: RecordedEvent) -> None:
    match event:
        case ProtocolListed() | ProtocolUpdated():
            Protocol.objects.update_or_create(slug=event.slug, defaults={
                **{name: getattr(event, name) for name in FIGURES}, "updated_at": recorded.recorded_at,
                "position": recorded.position})
        case ProtocolApyChanged():
            Protocol.objects.filter(slug=event.slug).update(apy=event.apy, updated_at=recorded.recorded_at,
                                                            position=recorded.position)
        case _:
            return
    invalidate(PROTOCOLS_SCOPE)


@projection("yield_farming.strategies", events=[YieldStrategyExecutionRequested, ReservationReleased,
                                                YieldPositionOpened, YieldPositionClosed],
            read_models=[YieldStrategy, YieldPosition])
def project_strategies(event: Event, recorded: RecordedEvent) -> None:
    """The strategy's saga id is the one the engine derives from this very event, so the status can find it."""
    match event:
        case YieldStrategyExecutionRequested():
            YieldStrategy.objects.create(
                strategy_id=event.strategy_id, user_id=event.user_id,
                saga_id=saga_id_for_event(YieldFarmingSaga, recorded), protocols=list(event.protocols),
                amount=event.amount, risk_tolerance=event.risk_tolerance, requested_at=event.requested_at,
                position=recorded.position)
        case ReservationReleased():
            strategy = YieldStrategy.objects.filter(pk=event.reservation_id).first()
            if strategy is not None:
                strategy.released += event.amount
                strategy.position = recorded.position
                strategy.save(update_fields=["released", "position"])
        case YieldPositionOpened():
            YieldPosition.objects.create(
                position_id=event.position_id, user_id=event.user_id, strategy_id=event.strategy_id,
                protocol=event.protocol, principal=event.principal, apy=event.apy, opened_at=event.opened_at,
                position=recorded.position)
            strategy = YieldStrategy.objects.get(pk=event.strategy_id)
            strategy.allocated += event.principal
            strategy.position = recorded.position
            strategy.save(update_fields=["allocated", "position"])
        case YieldPositionClosed():
            YieldPosition.objects.filter(pk=event.position_id).update(
                closed_at=event.closed_at, close_reason=event.reason, position=recorded.position)
