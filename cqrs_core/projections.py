"""Projections: events in, read-model rows out, with a checkpoint that moves in the same transaction.

* ``async`` projections run on Celery: woken after each commit that carries one of their event
  types (unless a run is already queued and not started: it will read that commit), swept by
  Celery beat so a lost wake-up only delays. A runner locks the projection's
  state row for each batch (``SKIP LOCKED`` on PostgreSQL), reads with the gap-free
  ``read_committed``, applies the events, moves the checkpoint and commits: one transaction, so
  a crashed or duplicated run changes nothing twice (DESIGN promise 4).
* ``immediate`` projections are applied inside the command's own transaction and never lag.
  The command takes the state row ``FOR SHARE``; a rebuild takes it ``FOR UPDATE``, so a command
  either applies its events itself or commits before the rebuild reads past them.
* A batch is applied in one savepoint, by the projection's ``batch`` function when it declares
  one (load every row the batch touches in one query, write them back in bulk) or event by event.
  If the batch fails, it is rolled back to the savepoint and applied again one event at a time,
  each in its own savepoint, to find the failing event: it is retried with backoff, then stored
  as a dead letter; a ``strict`` projection stops before it (status ``failed``), a lenient one
  continues past it. The other events of the batch are applied once either way.
* Rebuilds reset the read models and replay in batches with ``is_replaying()`` true, so
  projections that would trigger outbound effects can tell; sagas are not projections and are
  never driven by a rebuild.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import logging
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.core.cache import cache
from django.db import connection, models, transaction
from django.utils import timezone

from .backends.postgresql import prepared
from .errors import Conflict, NotFound
from .events import Event, RecordedEvent
from .models import DeadLetter, ProjectionState, StoredEvent
from .store import (
    READ_AFTER, READ_COLUMNS, READ_WIDTH, SNAPSHOT, WANTED_TYPES, Batch, Cursor, batch_from_rows, head_position,
    read_committed,
)

logger = logging.getLogger("ledgerline.projections")

ASYNC = "async"
IMMEDIATE = "immediate"
Status = ProjectionState.Status

#: Seconds after which a rebuild that stopped sending heartbeats is taken as dead.
REBUILD_HEARTBEAT_TIMEOUT = 60
#: How long one runner waits for a hole in the positions to resolve before it yields.
GAP_WAIT_SECONDS = 0.5
#: How long a runner that took a dirty mark waits for another runner's batch to release the state row.
BUSY_WAIT_SECONDS = 0.5
#: How long a worker's runner keeps one projection before it hands the worker over (see ``run_projection``).
SLICE_SECONDS = 0.1
#: On a worker, after a batch that moved but came back short of its limit (nothing more waiting),
#: the runner waits this long before it reads again, so the next batch carries more: under a
#: steady trickle of commands a runner that read again at once spent a transaction, a lock, a
#: read and a checkpoint write on every one or two events (measured: several ms of worker CPU per
#: command). The pause keeps the worker's process (handing it over and coming back through the
#: broker instead, with a countdown, measured: lag p99 60 ms instead of 200 at 200 commands/s,
#: but 0.2 ms more worker CPU per command at 900/s, a message round trip per pause).
TRICKLE_PAUSE_SECONDS = 0.05
NOTIFY_CHANNEL = "cqrs_projection"
_replaying: contextvars.ContextVar[bool] = contextvars.ContextVar("replaying", default=False)


def is_replaying() -> bool:
    """True while a rebuild replays history: outbound effects must not fire."""
    return _replaying.get()


Apply = Callable[[Event, RecordedEvent], None]
#: ``batch(events)``: the same effect as ``apply`` on each event in order; raises if any event fails.
ApplyBatch = Callable[[Sequence[RecordedEvent]], None]

#: Positions read per batch unless a projection says otherwise: one transaction and one
#: checkpoint write per batch, and memory bounded by the batch, not by the history.
DEFAULT_BATCH_SIZE = 2000


@dataclass(frozen=True)
class Projection:
    """A registered projection: what it reads, what it writes, how it runs."""

    name: str
    apply: Apply
    event_types: frozenset[str]
    read_models: tuple[type[models.Model], ...]
    mode: str = ASYNC
    strict: bool = True
    batch_size: int = DEFAULT_BATCH_SIZE
    max_attempts: int = 3
    batch: ApplyBatch | None = None

    def reset(self) -> None:
        """Delete every row of the read models (children first, as listed last)."""
        for model in reversed(self.read_models):
            model.objects.all().delete()


_PROJECTIONS: dict[str, Projection] = {}


def projection(
    name: str,
    *,
    events: Iterable[type[Event]],
    read_models: Sequence[type[models.Model]],
    mode: str = ASYNC,
    strict: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_attempts: int = 3,
    batch: ApplyBatch | None = None,
) -> Callable[[Apply], Apply]:
    """Register ``apply(event, recorded)`` as projection ``name`` of the given event types.

    ``batch(events)``, when given, must have the effect of ``apply`` on each event in order (the
    runner uses it for whole batches and falls back to ``apply`` to isolate a failing event).
    """
    if mode not in (ASYNC, IMMEDIATE):
        raise ValueError(f"unknown projection mode {mode!r}")

    def register(fn: Apply) -> Apply:
        if name in _PROJECTIONS and _PROJECTIONS[name].apply.__qualname__ != fn.__qualname__:
            raise ValueError(f"projection {name!r} is already registered")
        _PROJECTIONS[name] = Projection(
            name, fn, frozenset(e.event_type for e in events), tuple(read_models), mode, strict, batch_size,
            max_attempts, batch,
        )
        return fn

    return register


def projections() -> list[Projection]:
    return [_PROJECTIONS[name] for name in sorted(_PROJECTIONS)]


def get_projection(name: str) -> Projection:
    try:
        return _PROJECTIONS[name]
    except KeyError:
        raise ProjectionNotFound(f"no projection named {name!r}", projection=name) from None


class ProjectionNotFound(NotFound):
    """No projection has this name."""

    code = "projection_not_found"


class RebuildAlreadyRunning(Conflict):
    """A rebuild of this projection is already running."""

    code = "rebuild_already_running"


def ensure_states() -> None:
    """Create the state rows of registered projections that have none yet.

    Reads first and writes only for missing rows: on SQLite an INSERT waits for the one write
    lock, which a running rebuild takes batch after batch, so an unconditional insert would make
    every status page and lag check wait for the rebuild to end.
    """
    names = {p.name for p in projections()}
    missing = names - set(ProjectionState.objects.filter(name__in=names).values_list("name", flat=True))
    if missing:
        ProjectionState.objects.bulk_create([ProjectionState(name=name) for name in sorted(missing)],
                                            ignore_conflicts=True)


# --- running --------------------------------------------------------------------------------
@dataclass
class RunReport:
    """What one call of :func:`run_projection` did."""

    name: str
    applied: int = 0
    batches: int = 0
    dead_lettered: int = 0
    position: int = 0
    status: str = Status.RUNNING
    busy: bool = False
    #: Stopped at the end of its time slice with events still coming: the caller must wake it again.
    yielded: bool = False


@dataclass
class _BatchOutcome:
    applied: int = 0
    moved: bool = False
    waiting_on_gap: bool = False
    dead_lettered: int = 0
    position: int = 0
    status: str = Status.RUNNING
    busy: bool = False
    caught_up: bool = False
    #: The read came back with as many positions as its limit: more may be waiting already.
    full: bool = False


def run_projection(name: str, *, max_batches: int | None = None, slice_seconds: float | None = None) -> RunReport:
    """Apply pending events to one projection until caught up; safe to call from many workers.

    With ``slice_seconds`` the runner stops after that long even if events keep coming, and says
    so (``RunReport.yielded``): under steady load a runner never catches up, and a worker with
    fewer processes than projections would otherwise keep the others' wake-ups waiting behind
    it (seen as seconds of lag on ``trading.trades`` while ``portfolio.portfolios`` kept a
    process). The Celery task queues itself again behind them.
    """
    proj = get_projection(name)
    report = RunReport(name)
    gap_deadline: float | None = None
    took_mark: float | None = None  # when this runner took a dirty mark it has not read after yet
    slice_end = None if slice_seconds is None else time.monotonic() + slice_seconds
    while max_batches is None or report.batches < max_batches:
        outcome = _run_batch(proj)
        if outcome.busy and took_mark is not None:
            # The mark stood for a commit the holder may have read before (its last, empty batch):
            # with the mark gone it would stop without reading again. Wait for its batch to end.
            if time.monotonic() - took_mark < BUSY_WAIT_SECONDS:
                time.sleep(0.01)
                continue
            _restore_dirty(name)  # still held: a long batch, whose end will see the mark
        took_mark = None
        _add(report, outcome)
        if outcome.busy or outcome.status != Status.RUNNING:
            break
        if outcome.moved and slice_end is not None and time.monotonic() >= slice_end:
            # Only while it moves: a runner held at a hole stops as before (a long transaction must
            # not turn into a loop of wake-ups that keeps the worker from everything else).
            report.yielded = True
            break
        if outcome.moved:
            gap_deadline = None
            if slice_end is not None and not outcome.full:
                time.sleep(TRICKLE_PAUSE_SECONDS)
            continue
        if outcome.waiting_on_gap:
            gap_deadline = gap_deadline or time.monotonic() + GAP_WAIT_SECONDS
            if time.monotonic() < gap_deadline:
                time.sleep(0.01)
                continue
        # Caught up; a wake-up that found us busy meanwhile left the dirty mark.
        if not _take_dirty(name):
            break
        took_mark = time.monotonic()
    return report


def _add(report: RunReport, outcome: _BatchOutcome) -> None:
    report.batches += 1
    report.applied += outcome.applied
    report.dead_lettered += outcome.dead_lettered
    report.position = outcome.position or report.position
    report.status = outcome.status
    report.busy = outcome.busy


def _run_batch(proj: Projection, *, rebuilding: bool = False, batch_size: int | None = None) -> _BatchOutcome:
    with transaction.atomic():
        state, batch = _lock_and_read(proj, batch_size or proj.batch_size)
        if state is None:
            return _BatchOutcome(busy=True)
        expected = Status.REBUILDING if rebuilding else Status.RUNNING
        if state.status != expected or (proj.mode == IMMEDIATE and not rebuilding):
            return _BatchOutcome(position=state.position, status=state.status, caught_up=True)
        start = state.position
        limit = batch_size or proj.batch_size
        outcome = _BatchOutcome(waiting_on_gap=batch.waiting_on_gap, full=batch.read >= limit)
        cursor = batch.cursor
        if _apply_together(proj, batch.events):
            outcome.applied = len(batch.events)
        else:
            cursor = _apply_one_by_one(proj, state, batch.events, cursor, outcome)
        outcome.moved = cursor.position != start
        outcome.caught_up = not outcome.moved and not batch.waiting_on_gap
        _save_state(state, cursor, outcome.applied, rebuilding, notify=outcome.moved)
        if rebuilding and outcome.caught_up and state.status == Status.REBUILDING:
            # Switched in the same transaction as the last read: see the module docstring.
            _finish_rebuild(state)
        outcome.position, outcome.status = state.position, state.status
        return outcome


def _lock_and_read(proj: Projection, limit: int) -> tuple[ProjectionState | None, Batch]:
    """The state row locked for this transaction and the next batch after its checkpoint; None when busy.

    On PostgreSQL one statement does both: the lock (``SKIP LOCKED``) is what gives the
    transaction its xid, and the gap-free read needs that xid assigned *after* its snapshot as
    the horizon of a hole (``store``'s module docstring); a lock taken by an earlier statement
    would have assigned it before. One round trip per batch instead of two, too.
    """
    if connection.vendor != "postgresql":
        state = _lock_state(proj.name)
        if state is None:
            return None, Batch([], Cursor(), False)
        return state, read_committed(Cursor(state.position, state.gap_upto, state.gap_horizon), limit=limit,
                                     types=proj.event_types)
    rows = prepared.execute(connection, _LOCK_AND_READ, [proj.name, sorted(proj.event_types), limit],
                            label="projection batch")
    if not rows:
        if not ProjectionState.objects.filter(name=proj.name).exists():
            ensure_states()
            return _lock_and_read(proj, limit)
        return None, Batch([], Cursor(), False)
    head, events = rows[0], rows[1:]
    state = ProjectionState.from_db(connection.alias, _STATE_FIELDS, head[READ_WIDTH:READ_WIDTH + len(_STATE_FIELDS)])
    cursor = Cursor(state.position, state.gap_upto, state.gap_horizon)
    if not events:
        return state, Batch([], cursor, False)
    return state, batch_from_rows(cursor, events, head[-2], head[-1])


def _lock_state(name: str, *, wait: bool = False) -> ProjectionState | None:
    """The state row, locked for this transaction; None when another runner holds it and not ``wait``."""
    if connection.vendor == "postgresql":
        state = _select_state_for_update(name, wait)
        if state is None and not ProjectionState.objects.filter(name=name).exists():
            ensure_states()
            state = _select_state_for_update(name, wait)
        return state
    # SQLite: the IMMEDIATE transaction already holds the database's one write lock.
    rows = ProjectionState.objects.filter(name=name)
    state = rows.first()
    if state is None:
        ensure_states()
        state = rows.first()
    return state


_STATE_FIELDS = [f.attname for f in ProjectionState._meta.concrete_fields]
_SELECT_STATE = (f"SELECT {', '.join(f.column for f in ProjectionState._meta.concrete_fields)} "
                 f"FROM {ProjectionState._meta.db_table} WHERE name = %s FOR UPDATE")


#: The state row (its columns after the event columns, left empty) and then the events after its
#: checkpoint (the state columns left empty), in one statement: see ``_lock_and_read``.
_STATE_COLUMNS = [f.column for f in ProjectionState._meta.concrete_fields]
_LOCK_AND_READ = (
    "WITH st AS MATERIALIZED (SELECT " + ", ".join(_STATE_COLUMNS) + f" FROM {ProjectionState._meta.db_table}\n"
    "                         WHERE name = %s::text FOR UPDATE SKIP LOCKED),\n"
    "     snap AS MATERIALIZED (" + SNAPSHOT + ")\n"
    "SELECT " + ", ".join(["NULL"] * READ_WIDTH) + ", " + ", ".join(f"st.{c}" for c in _STATE_COLUMNS)
    + ", snap.xmin, snap.horizon FROM st, snap\n"
    "UNION ALL\n"
    "(SELECT " + READ_COLUMNS.format(q="q") + ", " + ", ".join(["NULL"] * len(_STATE_COLUMNS)) + ", NULL, NULL\n"
    " FROM st, LATERAL (" + READ_AFTER.format(wanted=WANTED_TYPES, after="st.position") + ") q\n"
    " ORDER BY q.position)"
)


def _select_state_for_update(name: str, wait: bool) -> ProjectionState | None:
    """PostgreSQL: the row ``FOR UPDATE`` (``SKIP LOCKED`` unless ``wait``), as plain SQL: every batch pays it.

    Not prepared: it begins the batch's transaction (its ``BEGIN`` travels in the same message), and
    a key lookup is cheap to plan.
    """
    with connection.cursor() as cursor:
        cursor.execute(_SELECT_STATE if wait else _SELECT_STATE + " SKIP LOCKED", [name])
        row = cursor.fetchone()
    return None if row is None else ProjectionState.from_db(connection.alias, _STATE_FIELDS, row)


def _apply_together(proj: Projection, events: Sequence[RecordedEvent]) -> bool:
    """Apply the whole batch in one savepoint; False (and nothing applied) when any event failed."""
    if not events:
        return True
    if len(events) == 1:
        return False  # the one-by-one path applies it with its retries: nothing to save by trying twice
    try:
        with transaction.atomic():
            if proj.batch is not None:
                proj.batch(events)
            else:
                for recorded in events:
                    proj.apply(recorded.event, recorded)
        return True
    except Exception as exc:  # the one-by-one pass finds the event and dead-letters it
        logger.warning("projection %s: batch %s-%s failed (%s: %s); applying its events one by one",
                       proj.name, events[0].position, events[-1].position, type(exc).__name__, exc)
        return False


def _apply_one_by_one(proj: Projection, state: ProjectionState, events: Sequence[RecordedEvent], cursor: Cursor,
                      outcome: _BatchOutcome) -> Cursor:
    """Apply each event in its own savepoint; a failing one is dead-lettered, and stops a strict projection."""
    for recorded in events:
        error = _apply_with_retries(proj, recorded)
        if error is None:
            outcome.applied += 1
            continue
        outcome.dead_lettered += 1
        _dead_letter(proj, recorded, *error)
        if proj.strict:
            state.status, state.last_error = Status.FAILED, f"position {recorded.position}: {error[0]}"
            return Cursor(recorded.position - 1)
    return cursor


def _apply_with_retries(proj: Projection, recorded: RecordedEvent) -> tuple[str, str, int] | None:
    """Apply one event in a savepoint, retrying with backoff; the error after the last attempt."""
    for attempt in range(1, proj.max_attempts + 1):
        try:
            with transaction.atomic():
                proj.apply(recorded.event, recorded)
            return None
        except Exception as exc:  # any failure of a projection goes to the dead letters
            if attempt == proj.max_attempts:
                logger.error("projection %s failed on position %s: %s", proj.name, recorded.position, exc,
                             exc_info=True)
                return f"{type(exc).__name__}: {exc}", traceback.format_exc(), attempt
            time.sleep(0.01 * 2 ** (attempt - 1))
    return None


def _dead_letter(proj: Projection, recorded: RecordedEvent, error: str, tb: str, attempts: int) -> None:
    letter, created = DeadLetter.objects.get_or_create(
        projection=proj.name, position=recorded.position,
        defaults={"stream_id": recorded.stream_id, "event_type": recorded.event_type, "error": error,
                  "traceback": tb, "attempts": attempts},
    )
    if not created:
        letter.error, letter.traceback = error, tb
        letter.attempts += attempts
        letter.status = DeadLetter.Status.PENDING
        letter.save(update_fields=["error", "traceback", "attempts", "status", "updated_at"])


def _save_state(state: ProjectionState, cursor: Cursor, applied: int, rebuilding: bool, *, notify: bool) -> None:
    """Move the checkpoint (and tell waiting readers, on commit, when it moved): one round trip on PostgreSQL."""
    state.position, state.gap_upto, state.gap_horizon = cursor.position, cursor.gap_upto, cursor.gap_horizon
    state.events_applied += applied
    now = timezone.now()
    if applied:
        state.last_applied_at = now
    if rebuilding:
        state.rebuild_heartbeat_at = now
    if connection.vendor != "postgresql":
        state.save()
        return
    # What a batch changes (the rest is the rebuild's and the operators', who wait for the row lock).
    state.updated_at = now
    params = [state.position, state.gap_upto, state.gap_horizon, state.status, state.last_error, state.events_applied,
              state.last_applied_at, state.rebuild_heartbeat_at, state.updated_at, state.name]
    if notify:
        prepared.execute(connection, _UPDATE_STATE + _NOTIFY, [*params, NOTIFY_CHANNEL, f"{state.name}:{state.position}"],
                         label="projection checkpoint")
    else:
        prepared.execute(connection, _UPDATE_STATE, params, label="projection checkpoint")


_UPDATE_STATE = (f"UPDATE {ProjectionState._meta.db_table} SET position = %s::bigint, gap_upto = %s::bigint, "
                 "gap_horizon = %s::bigint, status = %s::text, last_error = %s::text, events_applied = %s::bigint, "
                 "last_applied_at = %s::timestamptz, rebuild_heartbeat_at = %s::timestamptz, "
                 "updated_at = %s::timestamptz WHERE name = %s::text")
_NOTIFY = " RETURNING pg_notify(%s::text, %s::text)"


def _finish_rebuild(state: ProjectionState) -> None:
    state.status = Status.RUNNING
    state.rebuild_target = state.rebuild_started_at = state.rebuild_heartbeat_at = None
    state.rebuild_cancel_requested = False
    state.save()


def _dirty_key(name: str) -> str:
    return f"cqrs:projection-dirty:{name}"


def _restore_dirty(name: str) -> None:
    """Put back a dirty mark this runner took but could not act on (another runner holds the row)."""
    from .wakeups import MARK_SECONDS

    try:
        cache.set(_dirty_key(name), time.time(), timeout=MARK_SECONDS)
    except Exception:  # the next command or the beat sweep wakes the projection instead
        logger.warning("could not mark projection %s dirty again", name, exc_info=True)


def _take_dirty(name: str) -> bool:
    try:
        return bool(cache.delete(_dirty_key(name)))
    except Exception:  # a cache outage only delays: the beat sweep catches up
        return False


def insert_rows(model: type[models.Model], rows: Sequence[models.Model]) -> None:
    """Insert new read-model rows in one statement: ``COPY`` on PostgreSQL, ``bulk_create`` elsewhere.

    For batch functions that only add rows (every column set by the caller; no generated key).
    ``COPY`` skips building a multi-row ``INSERT`` with a placeholder per value, which is where
    ``bulk_create`` spends its time for thousands of rows; a duplicate key fails it as it would
    the ``INSERT``. https://www.psycopg.org/psycopg3/docs/basic/copy.html
    """
    if connection.vendor != "postgresql" or not rows:
        model.objects.bulk_create(rows)
        return
    fields = model._meta.concrete_fields
    copy_rows(model, [f.column for f in fields],
              ([_copy_value(f, getattr(row, f.attname)) for f in fields] for row in rows))


def copy_rows(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``COPY`` value tuples (in ``columns`` order) into the model's table; PostgreSQL only.

    psycopg sends each value in PostgreSQL's text form and the server parses it as the column's
    type, so a string goes in as the text it holds: the Decimal and datetime strings of stored
    event data land exactly as the decoded values would, without decoding them first.
    """
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({names}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


#: Values psycopg adapts itself and Django's preparation would pass through unchanged on PostgreSQL
#: (a finite Decimal, a UUID, an aware datetime): preparing each costs more than copying it.
_NATIVE = (type(None), bool, int, str, UUID)


def _copy_value(field: models.Field, value: Any) -> Any:
    kind = type(value)
    if (kind in _NATIVE or (kind is Decimal and value.is_finite())
            or (kind is dt.datetime and value.tzinfo is not None)):
        return value
    return field.get_db_prep_save(value, connection)


# --- wiring into the command bus ------------------------------------------------------------
def apply_immediate(recorded: Sequence[RecordedEvent]) -> None:
    """Bus hook, inside the command's transaction: apply the events to immediate projections."""
    types = {r.event_type for r in recorded}
    for proj in projections():
        if proj.mode != IMMEDIATE or not proj.event_types & types:
            continue
        if _status_for_share(proj.name) != Status.RUNNING:
            continue  # a rebuild (or an operator) has it; the rebuild reads these events itself
        for item in recorded:
            if item.event_type in proj.event_types:
                proj.apply(item.event, item)


def _immediate_wants(types: set[str]) -> bool:
    """Whether an immediate projection reads any of these event types: the command must then run in a transaction."""
    return any(proj.mode == IMMEDIATE and proj.event_types & types for proj in projections())


apply_immediate.wants = _immediate_wants  # type: ignore[attr-defined]  # read by CommandBus._needs_transaction


def _status_for_share(name: str) -> str:
    if connection.vendor != "postgresql":
        state = ProjectionState.objects.filter(name=name).values_list("status", flat=True).first()
        if state is None:
            ensure_states()
            return Status.RUNNING
        return state
    with connection.cursor() as cursor:
        cursor.execute("SELECT status FROM cqrs_projection WHERE name = %s FOR SHARE", [name])
        row = cursor.fetchone()
    if row is None:
        ensure_states()
        return _status_for_share(name)
    return row[0]


# --- rebuilds -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    """How far a rebuild is: positions done of the positions to do, rate and time left."""

    name: str
    done: int
    total: int
    applied: int
    elapsed: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def percent(self) -> float:
        return 100.0 if self.total <= 0 else min(100.0, 100.0 * self.done / self.total)

    @property
    def eta_seconds(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


@dataclass
class RebuildReport:
    name: str
    events: int = 0
    applied: int = 0
    dead_lettered: int = 0
    position: int = 0
    status: str = Status.RUNNING
    seconds: float = 0.0
    dry_run: bool = False
    cancelled: bool = False


def rebuild(
    name: str,
    *,
    from_position: int = 0,
    batch_size: int | None = None,
    dry_run: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> RebuildReport:
    """Reset a projection and replay it from ``from_position`` (0: from the start, read models emptied).

    With ``from_position > 0`` the read models are kept and assumed to reflect every event up to
    it (resuming an interrupted rebuild). Refuses with ``RebuildAlreadyRunning`` while another
    rebuild of the same projection is alive.
    """
    proj = get_projection(name)
    started = time.monotonic()
    if dry_run:
        count = StoredEvent.objects.filter(position__gt=from_position, event_type__in=proj.event_types).count()
        return RebuildReport(name, events=count, position=from_position, dry_run=True)
    target = _claim_rebuild(proj, from_position)
    report = RebuildReport(name)
    token = _replaying.set(True)
    try:
        while True:
            outcome = _run_batch(proj, rebuilding=True, batch_size=batch_size)
            report.applied += outcome.applied
            report.dead_lettered += outcome.dead_lettered
            report.position, report.status = outcome.position, outcome.status
            if progress is not None:
                progress(Progress(name, outcome.position - from_position, target - from_position,
                                  report.applied, time.monotonic() - started))
            if outcome.busy:
                time.sleep(0.05)
                continue
            if outcome.status != Status.REBUILDING:
                break
            if _cancel_requested(name):
                report.cancelled = True
                ProjectionState.objects.filter(name=name).update(status=Status.PAUSED, rebuild_cancel_requested=False)
                report.status = Status.PAUSED
                break
            if not outcome.moved and outcome.waiting_on_gap:
                time.sleep(0.01)
    finally:
        _replaying.reset(token)
    report.events = report.applied + report.dead_lettered
    report.seconds = time.monotonic() - started
    return report


def _claim_rebuild(proj: Projection, from_position: int) -> int:
    """Mark the projection as rebuilding (resetting it when from 0); returns the target position."""
    ensure_states()
    with transaction.atomic():
        state = ProjectionState.objects.select_for_update().get(name=proj.name)
        now = timezone.now()
        alive = state.rebuild_heartbeat_at and now - state.rebuild_heartbeat_at < dt.timedelta(seconds=REBUILD_HEARTBEAT_TIMEOUT)
        if state.status == Status.REBUILDING and alive:
            raise RebuildAlreadyRunning(f"projection {proj.name} is being rebuilt", projection=proj.name)
        if from_position == 0:
            proj.reset()
            DeadLetter.objects.filter(projection=proj.name, status=DeadLetter.Status.PENDING).update(
                status=DeadLetter.Status.SKIPPED, resolved_by="rebuild", resolved_at=now)
        target = head_position()
        state.status, state.position, state.gap_upto, state.gap_horizon = Status.REBUILDING, from_position, None, None
        state.rebuild_target, state.rebuild_started_at, state.rebuild_heartbeat_at = target, now, now
        state.rebuild_cancel_requested, state.last_error = False, ""
        state.generation += 1
        state.save()
    return target


def _cancel_requested(name: str) -> bool:
    return ProjectionState.objects.filter(name=name, rebuild_cancel_requested=True).exists()


def request_cancel(name: str) -> None:
    """Ask a running rebuild to stop after its current batch (it ends ``paused``, resumable)."""
    ProjectionState.objects.filter(name=name, status=Status.REBUILDING).update(rebuild_cancel_requested=True)


# --- operating ------------------------------------------------------------------------------
def pause(name: str) -> None:
    get_projection(name)
    ensure_states()
    ProjectionState.objects.filter(name=name, status=Status.RUNNING).update(status=Status.PAUSED)


def resume(name: str) -> None:
    """Let a paused or failed projection run again from its checkpoint."""
    get_projection(name)
    ProjectionState.objects.filter(name=name, status__in=[Status.PAUSED, Status.FAILED]).update(
        status=Status.RUNNING, last_error="")


def retry_dead_letter(letter_id: int, *, by: str) -> bool:
    """Apply a dead letter's event again; True when it now applies (and the letter is resolved)."""
    letter = DeadLetter.objects.get(pk=letter_id)
    if letter.status != DeadLetter.Status.PENDING:
        # Already resolved or skipped: applying it again would apply the event twice.
        return letter.status == DeadLetter.Status.RESOLVED
    proj = get_projection(letter.projection)
    state = ProjectionState.objects.get(name=proj.name)
    if state.status == Status.FAILED and state.position == letter.position - 1:
        resume(proj.name)
        run_projection(proj.name)
        ok = ProjectionState.objects.get(name=proj.name).position >= letter.position
    else:
        return _apply_letter_out_of_order(proj, letter, by)
    if ok:
        DeadLetter.objects.filter(pk=letter_id).update(
            status=DeadLetter.Status.RESOLVED, resolved_by=by, resolved_at=timezone.now())
    return ok


def _apply_letter_out_of_order(proj: Projection, letter: DeadLetter, by: str) -> bool:
    """A lenient projection went on past the letter: apply it now, under the projection's lock.

    The letter is locked and resolved in the same transaction as the apply, so two retries of
    one letter (a double click, two operators) apply its event once.
    """
    from .store import _recorded, _COLUMNS

    row = StoredEvent.objects.filter(position=letter.position).values(*_COLUMNS).get()
    with transaction.atomic():
        _lock_state(proj.name, wait=True)
        pending = DeadLetter.objects.select_for_update().filter(pk=letter.pk).values_list("status", flat=True).first()
        if pending != DeadLetter.Status.PENDING:
            return pending == DeadLetter.Status.RESOLVED
        error = _apply_with_retries(proj, _recorded(row))
        if error is not None:
            _dead_letter(proj, _recorded(row), *error)
            return False
        DeadLetter.objects.filter(pk=letter.pk).update(
            status=DeadLetter.Status.RESOLVED, resolved_by=by, resolved_at=timezone.now())
    return True


def skip_dead_letter(letter_id: int, *, by: str) -> None:
    """Give up on a dead letter's event; a strict projection stopped on it moves past it."""
    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().get(pk=letter_id)
        letter.status, letter.resolved_by, letter.resolved_at = DeadLetter.Status.SKIPPED, by, timezone.now()
        letter.save()
        ProjectionState.objects.filter(
            name=letter.projection, status=Status.FAILED, position=letter.position - 1
        ).update(position=letter.position, status=Status.RUNNING, last_error="", gap_upto=None, gap_horizon=None)
    run_projection(letter.projection)


@dataclass(frozen=True)
class Lag:
    """How far a projection is behind the head of the store."""

    name: str
    mode: str
    status: str
    position: int
    head: int
    events_behind: int
    seconds_behind: float
    pending_dead_letters: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def lag(names: Iterable[str] | None = None, *, states: Iterable[ProjectionState] | None = None) -> list[Lag]:
    """Lag of each projection: positions behind the head, and the age of its oldest unapplied event.

    Only events of the projection's own types count: a projection whose checkpoint trails the
    head across other contexts' events is not behind.
    """
    if states is None:
        ensure_states()
        states = ProjectionState.objects.all()
    by_name = {s.name: s for s in states}
    head = head_position()
    wanted = set(by_name) if names is None else set(names) & set(by_name)
    # order_by(): the model's default ordering would join the GROUP BY and count each letter apart.
    dead = dict(DeadLetter.objects.filter(status=DeadLetter.Status.PENDING).order_by().values("projection")
                .annotate(n=models.Count("id")).values_list("projection", "n"))
    now = timezone.now()
    result = []
    for proj in projections():
        if proj.name not in wanted:
            continue
        state = by_name[proj.name]
        in_step = proj.mode == IMMEDIATE and state.status == Status.RUNNING
        oldest = None if in_step else _pending(proj, state.position).values_list("recorded_at", flat=True).first()
        behind = 0 if oldest is None else max(0, head - state.position)
        seconds = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        result.append(Lag(proj.name, proj.mode, state.status, state.position, head, behind, seconds,
                          dead.get(proj.name, 0)))
    return result


def _pending(proj: Projection, after: int, upto: int | None = None) -> models.QuerySet[StoredEvent]:
    """The projection's own events after its checkpoint, oldest first (index ``cqrs_event_type_pos``)."""
    rows = StoredEvent.objects.filter(event_type__in=proj.event_types, position__gt=after)
    if upto is not None:
        rows = rows.filter(position__lte=upto)
    return rows.order_by("position")


def caught_up(name: str, position: int) -> bool:
    """Whether projection ``name`` reflects every committed event of its types up to ``position``."""
    proj = get_projection(name)
    state = ProjectionState.objects.filter(name=name).values_list("status", "position").first()
    status, checkpoint = state if state is not None else (Status.RUNNING, 0)
    if proj.mode == IMMEDIATE and status == Status.RUNNING:
        return True
    if checkpoint >= position:
        return True
    return not _pending(proj, checkpoint, position).exists()


def sweep() -> list[str]:
    """Beat task body: queue a run of every async projection that is behind (lost wake-ups)."""
    from .tasks import run_projection_task

    behind = [item.name for item in lag() if item.mode == ASYNC and item.events_behind and item.status == Status.RUNNING]
    for name in behind:
        run_projection_task.apply_async(args=[name])
    return behind
