"""Projections of trading: ``trading.trades`` (one row per trade) and ``trading.strategies``.

``trading.strategies`` keeps each strategy's definition and signal counts, one row per signal
and the strategy's own book per asset (average cost over its trades only); unrealised P&L is
left to query time, at the latest market prices, so replay never depends on when it runs.
"""
from __future__ import annotations

import decimal
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db import connection

from cqrs_core.commands import MONEY_CONTEXT
from cqrs_core.events import Event, RecordedEvent
from cqrs_core.projections import copy_rows, insert_rows, projection
from cqrs_core.serialization import to_json

from .commands import money
from .events import (
    BUY, StrategyArchived, StrategyCreated, StrategyUpdated, TradeExecuted, TradeSignalAccepted, TradeSignalRejected,
)
from .models import Strategy, StrategyPosition, StrategySignal, Trade


def apply_trades(batch: Sequence[RecordedEvent]) -> None:
    """``trading.trades`` for a batch: one row per ``TradeExecuted``, inserted together.

    On PostgreSQL the rows are copied from the stored data as it is when it has the current
    schema (:func:`_stored_values`): decoding each event into its dataclass only to turn its
    Decimals, UUIDs and datetimes back into text for ``COPY`` was most of a rebuild's time.
    """
    trades = [recorded for recorded in batch if recorded.event_type == TradeExecuted.event_type]
    if connection.vendor == "postgresql":
        copy_rows(Trade, TRADE_COLUMNS, [_stored_values(recorded) for recorded in trades])
    else:
        insert_rows(Trade, [_trade_row(recorded.event, recorded) for recorded in trades])


@projection("trading.trades", events=[TradeExecuted], read_models=[Trade], batch=apply_trades)
def project_trades(event: Event, recorded: RecordedEvent) -> None:
    match event:
        case TradeExecuted():
            _trade_row(event, recorded).save(force_insert=True)


#: The columns of a ``Trade`` row in the order :func:`_stored_values` gives them.
TRADE_COLUMNS = ("trade_id", "user_id", "client_trade_id", "pair", "side", "amount", "price", "notional", "fee",
                 "realised_pnl", "executed_at", "position", "strategy_id")


def _stored_values(recorded: RecordedEvent) -> tuple[Any, ...]:
    """A ``Trade`` row's values, read off the stored data of the current schema version.

    The data was written by ``TradeExecuted.to_data`` from a validated event, so its strings are
    the exact text of its Decimals, UUIDs and datetimes, which ``COPY`` hands to PostgreSQL to
    parse as the columns' types. Data of an older schema version goes through the event (its
    upcasters) instead. ``strategy_id`` is absent from events stored before it existed.
    """
    if recorded.schema_version != TradeExecuted.schema_version:
        row = _trade_row(recorded.event, recorded)
        return tuple(getattr(row, column) for column in TRADE_COLUMNS)
    data = recorded.data
    return (data["trade_id"], data["user_id"], data["client_trade_id"], data["pair"], data["side"], data["amount"],
            data["price"], data["notional"], data["fee"], data["realised_pnl"], data["executed_at"],
            recorded.position, data.get("strategy_id"))


def _trade_row(event: TradeExecuted, recorded: RecordedEvent) -> Trade:
    return Trade(
        trade_id=event.trade_id, user_id=event.user_id, client_trade_id=event.client_trade_id, pair=event.pair,
        side=event.side, amount=event.amount, price=event.price, notional=event.notional, fee=event.fee,
        realised_pnl=event.realised_pnl, executed_at=event.executed_at, position=recorded.position,
        strategy_id=event.strategy_id,
    )


@projection("trading.strategies", events=[StrategyCreated, StrategyUpdated, StrategyArchived, TradeExecuted,
                                          TradeSignalAccepted, TradeSignalRejected],
            read_models=[Strategy, StrategySignal, StrategyPosition])
def project_strategies(event: Event, recorded: RecordedEvent) -> None:
    match event:
        case StrategyCreated():
            Strategy.objects.create(
                strategy_id=event.strategy_id, owner_id=event.owner_id, name=event.name, rules=to_json(event.rules),
                risk_profile=event.risk_profile, created_at=event.created_at, updated_at=event.created_at,
                version=recorded.stream_version, position=recorded.position,
            )
        case StrategyUpdated():
            Strategy.objects.filter(pk=event.strategy_id).update(
                name=event.name, rules=to_json(event.rules), risk_profile=event.risk_profile,
                updated_at=event.updated_at, version=recorded.stream_version, position=recorded.position,
            )
        case StrategyArchived():
            Strategy.objects.filter(pk=event.strategy_id).update(
                status=Strategy.Status.ARCHIVED, archived_at=event.archived_at, updated_at=event.archived_at,
                version=recorded.stream_version, position=recorded.position,
            )
        case TradeExecuted() if event.strategy_id is not None:
            _book(event)
        case TradeSignalAccepted() | TradeSignalRejected():
            _signal(event, recorded)


def _signal(event: TradeSignalAccepted | TradeSignalRejected, recorded: RecordedEvent) -> None:
    row = Strategy.objects.get(pk=event.strategy_id)
    outcome: dict[str, Any]
    if isinstance(event, TradeSignalAccepted):
        outcome = {"outcome": StrategySignal.Outcome.ACCEPTED, "trade_id": event.trade_id}
        row.signals_accepted += 1
    else:
        outcome = {"outcome": StrategySignal.Outcome.REJECTED, "reason": event.reason, "detail": event.detail,
                   "context": to_json(event.context)}
        row.signals_rejected += 1
    StrategySignal.objects.create(
        signal_id=event.signal_id, strategy_id=event.strategy_id, user_id=event.user_id, pair=event.pair,
        side=event.side, amount=event.amount, price=event.price, confidence=event.confidence,
        client_trade_id=event.client_trade_id, decided_at=event.decided_at, position=recorded.position, **outcome,
    )
    row.position = recorded.position
    row.save(update_fields=["signals_accepted", "signals_rejected", "position"])


def _book(event: TradeExecuted) -> None:
    """Average cost over the strategy's own trades; sells realise only against what the strategy bought."""
    book, _ = StrategyPosition.objects.get_or_create(strategy_id=event.strategy_id, asset=event.asset)
    with decimal.localcontext(MONEY_CONTEXT):
        book.fees += event.fee
        if event.side == BUY:
            quantity = book.quantity + event.amount
            book.average_cost = money((book.quantity * book.average_cost + event.notional) / quantity)
            book.quantity, book.bought = quantity, book.bought + event.amount
        else:
            matched = min(event.amount, book.quantity)
            book.realised_pnl += money((event.price - book.average_cost) * matched)
            book.quantity -= matched
            book.unmatched_sold += event.amount - matched
            book.sold += event.amount
            if book.quantity == 0:
                book.average_cost = Decimal(0)
    book.save()
