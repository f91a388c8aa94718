"""Test sagas of the accounts context: a transfer (withdraw, deposit, confirm) and a welcome bonus.

``FAULTS`` lets a test make a step misbehave: per key (``"deposit"``, ``"compensate:withdraw"``)
and moment (``"before"`` or ``"after"`` the step's command) a queue of exceptions to raise or
callables to call. ``CALLS`` records every step and compensation invocation, in order.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

from cqrs_core.bus import command_bus
from cqrs_core.events import Event
from cqrs_core.sagas import RetryPolicy, SagaDefinition, Step, StepContext, StepResult, TransientError, register_saga

from .commands import Deposit, Withdraw
from .events import AccountOpened

Fault = BaseException | Callable[[StepContext], None]
FAULTS: dict[tuple[str, str], list[Fault]] = {}
CALLS: list[str] = []
#: Currency that makes an opened account start a WelcomeBonusSaga (no other test uses it).
BONUS_CURRENCY = "XSG"


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: not an ``Exception``, so the driver records nothing after it."""


def _fault(ctx: StepContext, moment: str) -> None:
    key = ("compensate:" if ctx.compensating else "") + ctx.step
    queue = FAULTS.get((key, moment))
    if not queue:
        return
    fault = queue.pop(0)
    if isinstance(fault, BaseException):
        raise fault
    fault(ctx)


def _send(command: Withdraw | Deposit, ctx: StepContext, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Send the step's command under its deterministic id: a re-run replays, never repeats.

    ``data["pause_after"] == step`` makes the step's first attempt sleep ``pause_seconds`` after
    its command committed and before the step returns: a window to kill a real worker in, with
    the effect made and not yet recorded by the saga (``FAULTS`` cannot reach another process).
    """
    CALLS.append(("compensate:" if ctx.compensating else "") + ctx.step)
    _fault(ctx, "before")
    result = command_bus.dispatch(command, command_id=ctx.command_id(), correlation_id=ctx.correlation_id)
    _fault(ctx, "after")
    if data is not None and data.get("pause_after") == ctx.step and ctx.attempt == 1 and not ctx.compensating:
        time.sleep(float(data.get("pause_seconds", 10)))
    return {"position": result.position, "balance": result.data.get("balance")}


def _stop_here(data: Mapping[str, Any], step: str, result: dict[str, Any]) -> StepResult:
    if data.get("stop_after") == step:
        return StepResult(result=result, continue_flow=False, reason=f"stopped after {step}")
    return StepResult(result=result)


def withdraw(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> StepResult:
    cmd = Withdraw(account_id=UUID(data["source"]), amount=Decimal(data["amount"]))
    return _stop_here(data, "withdraw", _send(cmd, ctx))


def undo_withdraw(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> None:
    _send(Deposit(account_id=UUID(data["source"]), amount=Decimal(data["amount"])), ctx)


def deposit(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> StepResult:
    cmd = Deposit(account_id=UUID(data["target"]), amount=Decimal(data["amount"]))
    return _stop_here(data, "deposit", _send(cmd, ctx, data))


def undo_deposit(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> None:
    _send(Withdraw(account_id=UUID(data["target"]), amount=Decimal(data["amount"])), ctx)


def confirm(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> StepResult:
    CALLS.append("confirm")
    _fault(ctx, "before")
    if data.get("fail_confirm"):
        raise TransientError("confirmation service down")
    return StepResult(result={"withdrawn_at": results["withdraw"]["position"],
                              "deposited_at": results["deposit"]["position"]})


FAST = RetryPolicy(max_retries=3, backoff=0.0)


@register_saga
class TransferSaga(SagaDefinition, name="bus_app.TransferSaga"):
    """Move money between two accounts; put it back if a later step fails."""

    steps = [
        Step("withdraw", run=withdraw, compensate=undo_withdraw, timeout=30, retry=FAST,
             compensate_retry=RetryPolicy(max_retries=2, backoff=0.0)),
        Step("deposit", run=deposit, compensate=undo_deposit, timeout=30, retry=FAST),
        Step("confirm", run=confirm, timeout=30, retry=FAST),
    ]


@register_saga
class FragileTransferSaga(SagaDefinition, name="bus_app.FragileTransferSaga"):
    """The transfer with no retries of the deposit: a timeout there compensates at once."""

    steps = [
        TransferSaga.steps[0],
        Step("deposit", run=deposit, compensate=undo_deposit, timeout=5, retry=RetryPolicy(max_retries=0)),
        TransferSaga.steps[2],
    ]


@register_saga
class KillableTransferSaga(SagaDefinition, name="bus_app.KillableTransferSaga"):
    """The transfer with a short deposit deadline, so the sweep soon finds a step whose worker died."""

    steps = [
        TransferSaga.steps[0],
        Step("deposit", run=deposit, compensate=undo_deposit, timeout=3, retry=FAST),
        TransferSaga.steps[2],
    ]


def bonus(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> StepResult:
    return StepResult(result=_send(Deposit(account_id=UUID(data["account_id"]), amount=Decimal("5")), ctx))


@register_saga
class WelcomeBonusSaga(SagaDefinition, name="bus_app.WelcomeBonusSaga"):
    """Started by an event: every account opened in ``BONUS_CURRENCY`` gets a bonus deposit."""

    reacts_to = [AccountOpened]
    steps = [Step("bonus", run=bonus, retry=FAST)]

    @classmethod
    def start_from(cls, event: Event) -> dict[str, Any] | None:
        match event:
            case AccountOpened(currency=currency) if currency == BONUS_CURRENCY:
                return {"account_id": str(event.account_id)}
        return None


__all__ = ["CALLS", "FAULTS", "TransientError", "WorkerKilled"]
