"""``RebalanceSaga``: execute a rebalance plan's trades in order; reverse them all if one fails for good.

A plan has any number of trades, but a saga's steps are declared once. So the saga has three:
``sells`` (every sell of the plan, in order), ``buys`` (every buy) and ``settle``. A trade that
fails for good does not fail its own step: the step stops there, records the trades it made
and the failure, and completes. The next step sees the failure and fails (``RebalanceAborted``,
never retried), so the engine compensates the completed steps newest first: each compensation
reverses exactly the trades its step recorded (opposite side, same amount, latest price), newest
first. The partial trades of the failing step are therefore reversed the way every compensation
is: persisted, retried, each once, and a reversal that gives up leaves the saga ``failed`` for an
operator (``retry_saga``) instead of a silent half-rebalanced portfolio. A step that dies by timeout
on its last attempt is not compensated by the engine (it never completed): the compensation of the
step before it finds that step's trades in the store by their command ids and reverses them first.

Errors that may pass (no market price yet, a version conflict, a price that left the band between
reading it and trading) are raised for the engine to retry the whole step: the re-run finds the
trades already made under their command ids (``StepContext.command_id``, so a re-run or a
duplicate delivery never trades twice) and continues with the first one not made. Only on the
step's last attempt do they count as failing for good.

Every trade carries ``client_trade_id`` ``rb:<rebalance_id>:<index>`` (``:undo`` for a
reversal), which is how the rebalance read model finds it and how a user sees it in their trades.
"""
from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from cqrs_core.bus import command_bus
from cqrs_core.errors import IdempotencyKeyReused
from cqrs_core.events import Event
from cqrs_core.sagas import RetryPolicy, SagaDefinition, Step, StepContext, StepResult, TransientError, register_saga
from cqrs_core.serialization import to_json
from cqrs_core.store import read_command_events
from trading.commands import ExecuteTrade
from trading.errors import PriceOutOfRange
from trading.events import BUY, SELL, TradeExecuted

from . import market
from .errors import MarketUnavailable
from .events import RebalanceExecutionStarted

TRADES_RETRY = RetryPolicy(max_retries=3, backoff=0.5)
#: Errors that may pass on a later try: the engine's, plus a price that moved out of the band.
MAY_PASS: tuple[type[BaseException], ...] = (*TRADES_RETRY.retryable, PriceOutOfRange)
REVERSALS_RETRY = RetryPolicy(max_retries=5, backoff=1.0, retryable=MAY_PASS)
CLIENT_ID_PREFIX = "rb"
UNDO = "undo"
#: The steps that trade, in order (a step's run uses command ids ``uuid5(uuid5(saga, step), "trade:<i>")``).
TRADING_STEPS = ("sells", "buys")


class RebalanceAborted(Exception):
    """A trade of the plan failed for good: the trades made so far are to be reversed."""


def client_trade_id(rebalance_id: UUID | str, index: int, *, reversal: bool = False) -> str:
    """``rb:<rebalance_id>:<index>`` (``:undo`` appended for the reversal of that trade): 45 to 50 characters."""
    return f"{CLIENT_ID_PREFIX}:{rebalance_id}:{index}" + (f":{UNDO}" if reversal else "")


def parse_client_trade_id(value: str | None) -> tuple[UUID, int, bool] | None:
    """(rebalance id, trade index, is a reversal) of a rebalance trade's client id; None for any other."""
    parts = (value or "").split(":")
    if len(parts) not in (3, 4) or parts[0] != CLIENT_ID_PREFIX or (len(parts) == 4 and parts[3] != UNDO):
        return None
    try:
        return UUID(parts[1]), int(parts[2]), len(parts) == 4
    except ValueError:
        return None


# --- steps ----------------------------------------------------------------------------------
def run_sells(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> StepResult:
    return _run_side(data, SELL, ctx)


def run_buys(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> StepResult:
    _abort_if_failed(results, "sells")
    return _run_side(data, BUY, ctx)


def settle(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> StepResult:
    _abort_if_failed(results, "buys")
    made = [t for step in ("sells", "buys") for t in results[step]["trades"]]
    return StepResult(result={"trades": len(made), "fees": str(sum((Decimal(t["fee"]) for t in made), Decimal(0)))})


def reverse_step(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> None:
    """Compensation of ``sells`` and ``buys``: reverse the trades the step made, newest first.

    First, the trades of any later trading step that never completed (it died by timeout on its
    last attempt, so the engine does not compensate it) are found in the store by their command
    ids and reversed too. A reversal's command id depends only on the saga and the trade, so
    whichever compensation reaches a trade first reverses it, and only once.
    """
    later = [step for step in TRADING_STEPS[TRADING_STEPS.index(ctx.step) + 1:] if step not in results]
    for step in later:
        for trade in reversed(_made_by(data, step, ctx.saga_id)):
            _reverse(data, trade, ctx)
    for trade in reversed(results[ctx.step]["trades"]):
        _reverse(data, trade, ctx)


def _reverse(data: Mapping[str, Any], trade: Mapping[str, Any], ctx: StepContext) -> None:
    opposite = BUY if trade["side"] == SELL else SELL
    _trade(data, index=trade["index"], pair=trade["pair"], side=opposite, amount=Decimal(trade["amount"]),
           ctx=ctx, reversal=True)


def _made_by(data: Mapping[str, Any], step: str, saga_id: UUID) -> list[dict[str, Any]]:
    """The trades a step made, in plan order, read from the store by the command ids its runs used."""
    side = SELL if step == "sells" else BUY
    made = []
    for planned in (t for t in data["trades"] if t["side"] == side):
        done = _executed(uuid5(uuid5(saga_id, step), f"trade:{planned['index']}"))
        if done is not None:
            made.append({"index": planned["index"], "pair": done.pair, "side": done.side,
                         "amount": to_json(done.amount)})
    return made


def _run_side(data: Mapping[str, Any], side: str, ctx: StepContext) -> StepResult:
    made: list[dict[str, Any]] = []
    for planned in (t for t in data["trades"] if t["side"] == side):
        try:
            made.append(_trade(data, index=planned["index"], pair=planned["pair"], side=side,
                               amount=Decimal(planned["amount"]), ctx=ctx))
        except Exception as exc:  # recorded as the step's failure: the next step aborts and all is reversed
            if isinstance(exc, MAY_PASS) and ctx.attempt <= _policy(ctx).max_retries:
                raise TransientError(f"{side} #{planned['index']} {planned['pair']}: {_describe(exc)}") from exc
            failure = {"index": planned["index"], "pair": planned["pair"], "side": side, "error": _describe(exc)}
            return StepResult(result={"trades": made, "failed": failure})
    return StepResult(result={"trades": made})


def _policy(ctx: StepContext) -> RetryPolicy:
    """The running step's own retry policy: its last attempt turns errors that may pass into a failure."""
    return RebalanceSaga.steps[RebalanceSaga.step_index(ctx.step)].retry


def _abort_if_failed(results: Mapping[str, Any], step: str) -> None:
    failed = results[step].get("failed")
    if failed:
        raise RebalanceAborted(f"{failed['side']} #{failed['index']} {failed['pair']} failed: {failed['error']}")


def _describe(exc: Exception) -> str:
    return f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"


def _trade(data: Mapping[str, Any], *, index: int, pair: str, side: str, amount: Decimal, ctx: StepContext,
           reversal: bool = False) -> dict[str, Any]:
    """Trade at the latest price under a command id fixed per (saga, step, trade) — per (saga, trade) for a
    reversal, whichever step's compensation makes it; a re-run finds the first."""
    command_id = uuid5(ctx.saga_id, f"{UNDO}:{index}") if reversal else ctx.command_id(f"trade:{index}")
    done = _executed(command_id)
    if done is None:
        cmd = ExecuteTrade(user_id=int(data["user_id"]), trade_id=uuid5(command_id, "trade"), pair=pair, side=side,
                           amount=amount, price=_latest_price(pair),
                           client_trade_id=client_trade_id(data["rebalance_id"], index, reversal=reversal))
        try:
            command_bus.dispatch(cmd, command_id=command_id, correlation_id=ctx.correlation_id)
        except IdempotencyKeyReused:
            pass  # a concurrent run of this step traded first (at its own price): that trade counts
        done = _executed(command_id)
        if done is None:
            raise TransientError(f"trade {command_id} is not recorded yet")
    return {"index": index, "trade_id": str(done.trade_id), "pair": done.pair, "side": done.side,
            "amount": to_json(done.amount), "price": to_json(done.price), "notional": to_json(done.notional),
            "fee": to_json(done.fee)}


def _executed(command_id: UUID) -> TradeExecuted | None:
    return next((r.event for r in read_command_events(command_id) if isinstance(r.event, TradeExecuted)), None)


def _latest_price(pair: str) -> Decimal:
    price = market.snapshot().prices.get(pair)
    if price is None:
        raise MarketUnavailable(pair=pair)
    return price


@register_saga
class RebalanceSaga(SagaDefinition, name="portfolio.RebalanceSaga"):
    """Started by ``RebalanceExecutionStarted``: sells, then buys, then settle; reversed if a trade fails."""

    reacts_to = [RebalanceExecutionStarted]
    steps = [
        Step("sells", run=run_sells, compensate=reverse_step, timeout=120, retry=TRADES_RETRY,
             compensate_retry=REVERSALS_RETRY),
        Step("buys", run=run_buys, compensate=reverse_step, timeout=120, retry=TRADES_RETRY,
             compensate_retry=REVERSALS_RETRY),
        Step("settle", run=settle, timeout=30, retry=TRADES_RETRY),
    ]

    @classmethod
    def start_from(cls, event: Event) -> dict[str, Any] | None:
        match event:
            case RebalanceExecutionStarted():
                return {"user_id": event.user_id, "rebalance_id": str(event.rebalance_id),
                        "trades": to_json(sorted(event.trades, key=lambda t: t.index))}
        return None
