"""Projection ``trading.trades``: one row per executed trade."""
from __future__ import annotations

from cqrs_core.events import Event, RecordedEvent
from cqrs_core.projections import projection

from .events import TradeExecuted
from .models import Trade


@projection("trading.trades", events=[TradeExecuted], read_models=[Trade])
def project_trades(event: Event, recorded: RecordedEvent) -> None:
    match event:
        case TradeExecuted():
            Trade.objects.create(
                trade_id=event.trade_id, user_id=event.user_id, client_trade_id=event.client_trade_id,
                pair=event.pair, side=event.side, amount=event.amount, price=event.price, notional=event.notional,
                fee=event.fee, realised_pnl=event.realised_pnl, executed_at=event.executed_at,
                position=recorded.position,
            )
