"""The saga driver: claim a step under the row lock, run it outside, record it under the lock.

One call of :func:`advance` moves a saga by one step or compensation. The row is locked twice:
to *claim* (take a lease that lasts the step's timeout, count the attempt) and to *record*
(store the result, append the saga's events, move on) in one transaction. A step whose effect
committed but whose completion was not recorded runs again, so steps must be idempotent per
(saga, step): they send commands with ``ctx.command_id()`` and the bus replays a repeated id.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..commands import ResourceRequirements
from ..errors import Conflict, NotFound
from ..events import Event, EventMetadata, RecordedEvent
from ..projections import is_replaying
from ..wakeups import wake_projections
from ..serialization import to_json
from ..store import NewEvent, append
from . import events as ev
from .definition import SagaDefinition, Step, StepContext, StepResult, StepTimedOut, saga_definition, sagas_reacting_to
from .models import SagaInstance

logger = logging.getLogger("ledgerline.sagas")

Status = SagaInstance.Status
TERMINAL = (Status.COMPLETED, Status.COMPENSATED, Status.FAILED)
#: A live saga with no lease left untouched this long lost its next-step message: the sweep re-drives it.
IDLE_SECONDS = 30.0
#: Seconds Celery adds to a step's timeout before killing it, so the step can fail on its own first.
HARD_LIMIT_GRACE = 5.0
#: Most ticks one inline (eager) run takes, so a looping saga cannot hang the process.
MAX_EAGER_TICKS = 10_000
_SAGA_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "ledgerline:saga")


class SagaNotFound(NotFound):
    """No saga has this id."""

    code = "saga_not_found"


class SagaNotInState(Conflict):
    """The saga is not in a state that allows this."""

    code = "saga_not_in_state"


@dataclass(frozen=True)
class Tick:
    """What one :func:`advance` did: whether there is more to do, and after how many seconds."""

    more: bool
    delay: float = 0.0
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Claim:
    definition: type[SagaDefinition]
    step: Step
    compensating: bool
    attempt: int
    data: dict[str, Any]
    results: dict[str, Any]
    correlation_id: UUID | None


# --- starting -----------------------------------------------------------------------------
def start_saga(definition: type[SagaDefinition], data: Mapping[str, Any], *, saga_id: UUID | None = None,
               correlation_id: UUID | None = None) -> UUID | None:
    """Start a saga (once per ``saga_id``); returns its id, or None during a projection rebuild."""
    if is_replaying():
        return None
    saga_id = saga_id or uuid.uuid4()
    now = timezone.now()
    try:
        with transaction.atomic():
            inst = SagaInstance.objects.create(
                id=saga_id, saga_type=definition.saga_type, data=to_json(dict(data)), started_at=now,
                correlation_id=correlation_id or uuid.uuid4(),
            )
            _record(inst, [ev.SagaStarted(saga_id=saga_id, saga_type=definition.saga_type, data=inst.data)], now)
    except IntegrityError:
        return saga_id  # the deterministic id made this a duplicate start: the first one runs it
    schedule(saga_id)
    return saga_id


def saga_id_for_event(definition: type[SagaDefinition], recorded: RecordedEvent) -> UUID:
    """The id of the saga ``recorded`` starts: the same for every delivery of that event."""
    return uuid.uuid5(uuid.uuid5(_SAGA_NAMESPACE, definition.saga_type), str(recorded.metadata.event_id))


def start_sagas_for_events(recorded: Sequence[RecordedEvent]) -> None:
    """Bus hook, after commit: start the sagas that react to these events (never while replaying)."""
    if is_replaying():
        return
    for item in recorded:
        for definition in sagas_reacting_to(item.event_type):
            data = definition.start_from(item.event)
            if data is None:
                continue
            try:
                start_saga(definition, data, saga_id=saga_id_for_event(definition, item),
                           correlation_id=item.metadata.correlation_id)
            except Exception:  # the command has committed; its caller must not see a saga's trouble
                logger.exception("could not start saga %s for event %s", definition.saga_type, item.position)


# --- driving ------------------------------------------------------------------------------
def schedule(saga_id: UUID, *, countdown: float = 0.0, options: Mapping[str, Any] | None = None) -> None:
    """Run the saga now (eager mode) or queue its next step for a worker after commit."""
    from ..tasks import saga_step

    if saga_step.app.conf.task_always_eager:
        run_saga(saga_id)
        return
    opts = dict(options if options is not None else _options_for(saga_id))

    def send() -> None:
        try:
            saga_step.apply_async(args=[str(saga_id)], countdown=countdown or None, **opts)
        except Exception:  # the state is committed: the beat sweep re-drives a saga whose message was lost
            logger.warning("could not queue saga %s; the sweep will re-drive it", saga_id, exc_info=True)

    transaction.on_commit(send)


def run_saga(saga_id: UUID) -> None:
    """Drive a saga inline until it ends or someone else holds it (eager mode: a loop, not recursion)."""
    for _ in range(MAX_EAGER_TICKS):
        tick = advance(saga_id)
        if not tick.more:
            return
        if tick.delay > 0:
            time.sleep(tick.delay)
    logger.error("saga %s still running after %d inline ticks", saga_id, MAX_EAGER_TICKS)


def advance(saga_id: UUID) -> Tick:
    """Run the saga's current step (or compensation) once and record what happened."""
    owner = uuid.uuid4().hex
    claim = _claim(saga_id, owner)
    if not isinstance(claim, _Claim):
        return claim
    ctx = StepContext(saga_id=saga_id, step=claim.step.name, attempt=claim.attempt,
                      correlation_id=claim.correlation_id, compensating=claim.compensating)
    try:
        outcome = _run(claim, ctx)
    except Exception as exc:  # recorded as the attempt's error: retried or compensated, never dropped
        return _record_outcome(saga_id, owner, claim, None, _as_step_error(exc))
    return _record_outcome(saga_id, owner, claim, outcome, None)


def _run(claim: _Claim, ctx: StepContext) -> StepResult:
    if claim.compensating:
        assert claim.step.compensate is not None
        claim.step.compensate(claim.data, claim.results, ctx)
        return StepResult()
    returned = claim.step.run(claim.data, claim.results, ctx)
    if isinstance(returned, StepResult):
        return returned
    return StepResult(result=dict(returned or {}))


def _as_step_error(exc: Exception) -> Exception:
    from celery.exceptions import SoftTimeLimitExceeded

    if isinstance(exc, SoftTimeLimitExceeded):
        return StepTimedOut("the step ran past its soft time limit")
    return exc


def _lock(saga_id: UUID) -> SagaInstance | None:
    return SagaInstance.objects.select_for_update().filter(pk=saga_id).first()


def _claim(saga_id: UUID, owner: str) -> _Claim | Tick:
    with transaction.atomic():
        inst = _lock(saga_id)
        if inst is None or inst.status in TERMINAL or is_replaying():
            return Tick(more=False)
        now = timezone.now()
        if inst.lease_owner:
            if inst.deadline_at is not None and inst.deadline_at > now:
                return Tick(more=False)  # another driver is running this step
            # Overdue: the step timed out or its worker died. Count the attempt as failed.
            definition = saga_definition(inst.saga_type)
            step, compensating = _current(definition, inst)
            _fail(inst, definition, step, compensating, inst.attempts.get(_key(step, compensating), 1),
                  StepTimedOut(f"no result within {step.timeout:g}s (timed out or its worker died)"), now)
            return _tick_after(inst)
        if inst.next_attempt_at is not None and inst.next_attempt_at > now:
            return Tick(more=True, delay=(inst.next_attempt_at - now).total_seconds(), options=_options(inst))
        definition = saga_definition(inst.saga_type)
        step, compensating = _current(definition, inst)
        key = _key(step, compensating)
        attempt = inst.attempts.get(key, 0) + 1
        inst.attempts = {**inst.attempts, key: attempt}
        inst.status = Status.COMPENSATING if compensating else Status.RUNNING
        inst.lease_owner = owner
        inst.deadline_at = inst.lease_expires_at = now + dt.timedelta(seconds=step.timeout)
        inst.next_attempt_at = None
        inst.save()
        return _Claim(definition, step, compensating, attempt, inst.data, dict(inst.results), inst.correlation_id)


def _record_outcome(saga_id: UUID, owner: str, claim: _Claim, outcome: StepResult | None,
                    error: Exception | None) -> Tick:
    with transaction.atomic():
        inst = _lock(saga_id)
        if inst is None or inst.lease_owner != owner:
            # The lease was taken over (we were too slow): whoever holds it now re-runs the step,
            # which replays our commands; nothing to record here.
            return Tick(more=False)
        now = timezone.now()
        if error is not None:
            _fail(inst, claim.definition, claim.step, claim.compensating, claim.attempt, error, now)
        elif claim.compensating:
            _compensation_done(inst, claim, now)
        else:
            assert outcome is not None
            _step_done(inst, claim, outcome, now)
        return _tick_after(inst)


def _step_done(inst: SagaInstance, claim: _Claim, outcome: StepResult, now: dt.datetime) -> None:
    name = claim.step.name
    inst.results = {**inst.results, name: to_json(dict(outcome.result))}
    events: list[Event] = [
        ev.StepCompleted(saga_id=inst.id, step=name, attempt=claim.attempt, result=inst.results[name]),
        *outcome.events,
    ]
    last = inst.current_step + 1 >= len(claim.definition.steps)
    if not outcome.continue_flow or last:
        reason = outcome.reason if not outcome.continue_flow else ""
        _end(inst, Status.COMPLETED, reason, now)
        events.append(ev.SagaCompleted(saga_id=inst.id, reason=reason))
    else:
        inst.current_step += 1
    _release(inst)
    _record(inst, events, now)


def _compensation_done(inst: SagaInstance, claim: _Claim, now: dt.datetime) -> None:
    name = claim.step.name
    inst.compensated = [*inst.compensated, name]
    events: list[Event] = [ev.CompensationCompleted(saga_id=inst.id, step=name, attempt=claim.attempt)]
    events += _move_to_compensation(inst, claim.definition, inst.current_step, now)
    _release(inst)
    _record(inst, events, now)


def _fail(inst: SagaInstance, definition: type[SagaDefinition], step: Step, compensating: bool, attempt: int,
          error: BaseException, now: dt.datetime) -> None:
    """Record a failed attempt; then retry later, compensate, or end ``failed``."""
    policy = step.compensation_policy if compensating else step.retry
    text = f"{type(error).__name__}: {error}"
    key = _key(step, compensating)
    will_retry = policy.may_retry(error, attempt)
    inst.errors = [*inst.errors, {"step": key, "attempt": attempt, "error": text, "at": now.isoformat(),
                                  "traceback": "".join(traceback.format_exception(error))[-4000:]}]
    events: list[Event] = [ev.StepFailed(saga_id=inst.id, step=key, attempt=attempt, error=text, will_retry=will_retry)]
    _release(inst)
    if will_retry:
        inst.next_attempt_at = now + dt.timedelta(seconds=policy.delay(attempt))
    elif compensating:
        # Visible to operators (status, reason, SagaFailed, the admin), never swallowed.
        _end(inst, Status.FAILED, f"compensation of {step.name} failed: {text}", now)
        events.append(ev.SagaFailed(saga_id=inst.id, step=key, error=text))
        logger.error("saga %s failed: compensation of %s gave up: %s", inst.id, step.name, text)
    else:
        inst.reason = f"step {step.name} failed: {text}"
        events += _move_to_compensation(inst, definition, inst.current_step, now)
    _record(inst, events, now)


def _move_to_compensation(inst: SagaInstance, definition: type[SagaDefinition], below: int,
                          now: dt.datetime) -> list[Event]:
    """Point at the next completed step below ``below`` that has a compensation, or end compensated."""
    for index in range(below - 1, -1, -1):
        step = definition.steps[index]
        if step.compensate is not None and step.name in inst.results and step.name not in inst.compensated:
            inst.status, inst.current_step = Status.COMPENSATING, index
            return []
    _end(inst, Status.COMPENSATED, inst.reason, now)
    return [ev.SagaCompensated(saga_id=inst.id, reason=inst.reason)]


def _end(inst: SagaInstance, status: str, reason: str, now: dt.datetime) -> None:
    inst.status, inst.reason, inst.ended_at = status, reason, now


def _release(inst: SagaInstance) -> None:
    inst.lease_owner, inst.lease_expires_at, inst.deadline_at, inst.next_attempt_at = "", None, None, None


def _record(inst: SagaInstance, events: Sequence[Event], now: dt.datetime) -> None:
    """Append to ``saga-<id>`` at the version the row knows and save the row: one transaction."""
    meta = {"correlation_id": inst.correlation_id}
    recorded = append(inst.stream_id, [NewEvent(event=e, metadata=EventMetadata(event_id=uuid.uuid4(), **meta))
                                       for e in events], inst.version, now=now)
    inst.version += len(recorded)
    inst.save()
    if recorded:  # projections of saga events (a context's process read model) hear of them as of commands'
        transaction.on_commit(lambda: wake_projections(recorded))


def _tick_after(inst: SagaInstance) -> Tick:
    if inst.status in TERMINAL:
        return Tick(more=False)
    delay = 0.0
    if inst.next_attempt_at is not None:
        delay = max(0.0, (inst.next_attempt_at - timezone.now()).total_seconds())
    return Tick(more=True, delay=delay, options=_options(inst))


def _current(definition: type[SagaDefinition], inst: SagaInstance) -> tuple[Step, bool]:
    return definition.steps[inst.current_step], inst.status == Status.COMPENSATING


def _key(step: Step, compensating: bool) -> str:
    return ("compensate:" if compensating else "") + step.name


def _options(inst: SagaInstance) -> dict[str, Any]:
    """Celery routing of the saga's next step from its resource needs (queue, priority, time limits)."""
    step, _ = _current(saga_definition(inst.saga_type), inst)
    resources = step.resources or ResourceRequirements(queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    return {**resources.celery_options(), "soft_time_limit": resources.soft_time_limit or step.timeout,
            "time_limit": max(resources.time_limit, step.timeout + HARD_LIMIT_GRACE)}


def _options_for(saga_id: UUID) -> dict[str, Any]:
    inst = SagaInstance.objects.filter(pk=saga_id).first()
    return _options(inst) if inst is not None and inst.status not in TERMINAL else {}


# --- the beat sweep and operators -----------------------------------------------------------
def stalled(now: dt.datetime | None = None) -> list[UUID]:
    """Live sagas nobody is moving: an overdue step, a retry that is due, or a lost next-step message."""
    now = now or timezone.now()
    idle_since = now - dt.timedelta(seconds=IDLE_SECONDS)
    live = SagaInstance.objects.exclude(status__in=TERMINAL)
    due = live.filter(
        Q(lease_owner__gt="", deadline_at__lte=now)
        | Q(lease_owner="", next_attempt_at__lte=now)
        | Q(lease_owner="", next_attempt_at__isnull=True, updated_at__lte=idle_since)
    )
    return list(due.order_by("updated_at").values_list("id", flat=True)[:1000])


def sweep_sagas() -> list[UUID]:
    """Beat task body: re-drive stalled sagas. Duplicates are harmless: the lease lets one run a step."""
    if is_replaying():
        return []
    found = stalled()
    for saga_id in found:
        try:
            schedule(saga_id)
        except Exception:  # one broken saga must not stop the sweep of the others
            logger.exception("sweep could not drive saga %s", saga_id)
    return found


def retry_saga(saga_id: UUID, *, by: str) -> None:
    """Operator: try the compensation a ``failed`` saga gave up on again, with fresh attempts."""
    with transaction.atomic():
        inst = _locked_or_404(saga_id)
        if inst.status != Status.FAILED:
            raise SagaNotInState(f"saga {saga_id} is {inst.status}, not failed", saga_id=str(saga_id))
        step = saga_definition(inst.saga_type).steps[inst.current_step]
        inst.attempts = {**inst.attempts, _key(step, True): 0}
        inst.status, inst.ended_at = Status.COMPENSATING, None
        _record(inst, [ev.SagaOperatorAction(saga_id=inst.id, action="retry", by=by)], timezone.now())
    schedule(saga_id)


def compensate_saga(saga_id: UUID, *, by: str) -> None:
    """Operator: stop a stuck saga and compensate the steps it completed, newest first."""
    with transaction.atomic():
        inst = _locked_or_404(saga_id)
        if inst.status not in (Status.PENDING, Status.RUNNING):
            raise SagaNotInState(f"saga {saga_id} is {inst.status}", saga_id=str(saga_id))
        now = timezone.now()
        _release(inst)
        inst.reason = f"compensation requested by {by}"
        events: list[Event] = [ev.SagaOperatorAction(saga_id=inst.id, action="compensate", by=by)]
        events += _move_to_compensation(inst, saga_definition(inst.saga_type), inst.current_step, now)
        _record(inst, events, now)
    schedule(saga_id)


def _locked_or_404(saga_id: UUID) -> SagaInstance:
    inst = _lock(saga_id)
    if inst is None:
        raise SagaNotFound(saga_id=str(saga_id))
    return inst
