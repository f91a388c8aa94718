"""The command bus: load, decide, append in one transaction; middleware around every command.

Order of the middleware, outermost first: logging and timing, authorisation, and the unit of
work (under the stream's lock: answer an already handled command id from its record, else load
the state, call the pure handler, append with the expected version and record the outcome under
the command id, all in one transaction). A version conflict re-loads and re-decides up to
``CQRS_CONFLICT_RETRIES`` times.

On PostgreSQL the unit of work is two statements (``command_sql``): the lock, the handled check,
the transaction id and the stream's tail in one round trip, the events and the record in one
``INSERT``; elsewhere the same steps go through the ORM one by one. When this process committed
the stream's last event itself (the usual case: a client's commands land on the worker that
served its last one, a portfolio is mostly written by its owner) and no transaction is open, the
bus decides first, on the state it kept, and sends the whole command as one statement that
writes only if the stream still ends at that event (``command_sql.append_if_current``): one
round trip instead of three. A stream that moved comes back with nothing written, and the
command is decided again under the lock; a refusal on the kept state is decided again there
too, so only a state the store confirms can refuse or accept a command.

Loading reuses the state this process folded when it last committed on the stream (an LRU of
``CQRS_STATE_CACHE_SIZE`` streams, see :class:`StateCache`) and reads only the events after it;
otherwise it folds from the latest snapshot. Either way the stored events decide.
"""
from __future__ import annotations

import contextvars
import decimal
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from . import command_sql
from .commands import MONEY_CONTEXT, SYSTEM, Actor, Command, CommandContext, Decision, HandlerSpec, handler_for
from .errors import ConcurrencyConflict, DomainError, IdempotencyKeyReused, WrongExpectedVersion
from .events import Event, EventMetadata, RecordedEvent
from .logs import current_request_id
from .models import CommandRecord, Snapshot, StoredEvent
from .serialization import from_json, to_json
from .store import NewEvent, _recorded, _COLUMNS, append, read_stream, stream_version

logger = logging.getLogger("ledgerline.commands")

#: The correlation id of the command being handled, for log records and outgoing tasks.
current_correlation_id: contextvars.ContextVar[UUID | None] = contextvars.ContextVar("correlation_id", default=None)


@dataclass(frozen=True, kw_only=True)
class CommandResult:
    """The outcome of a successful command (errors are raised as ``DomainError``)."""

    command_id: UUID
    command_type: str
    stream_id: str
    events: tuple[RecordedEvent, ...]
    position: int | None
    stream_version: int
    data: Mapping[str, Any] = field(default_factory=dict)
    elapsed_ms: float = 0.0
    replayed: bool = False

    success = True

    def to_record(self) -> dict[str, Any]:
        return {"position": self.position, "stream_version": self.stream_version, "data": dict(self.data)}


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """A command on its way through the middleware, with who sent it and why."""

    command: Command
    actor: Actor
    command_id: UUID
    correlation_id: UUID
    causation_id: UUID | None
    expected_version: int | None


Next = Callable[[Envelope], CommandResult]
Middleware = Callable[[Envelope, Next], CommandResult]
EventsHook = Callable[[Sequence[RecordedEvent]], None]
Observer = Callable[[str, str, float], None]


class CommandBus:
    """Runs commands through middleware into the event store."""

    def __init__(self, *, clock: Callable[[], Any] = timezone.now) -> None:
        self.clock = clock
        self.middleware: list[Middleware] = [log_and_time, authorize]
        self.in_transaction_hooks: list[EventsHook] = []
        self.after_commit_hooks: list[EventsHook] = []
        self.observers: list[Observer] = []

    def dispatch(
        self,
        command: Command,
        *,
        actor: Actor = SYSTEM,
        command_id: UUID | None = None,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Run a command now; returns its result or raises its ``DomainError``."""
        envelope = Envelope(
            command=command, actor=actor, command_id=command_id or uuid4(),
            correlation_id=correlation_id or current_correlation_id.get() or uuid4(),
            causation_id=causation_id, expected_version=expected_version,
        )
        token = current_correlation_id.set(envelope.correlation_id)
        try:
            return self._chain(0)(envelope)
        finally:
            current_correlation_id.reset(token)

    def dispatch_async(self, command: Command, *, actor: Actor = SYSTEM, command_id: UUID | None = None,
                       correlation_id: UUID | None = None) -> UUID:
        """Queue a command for a worker after the current transaction commits; returns its id.

        The handler's ``ResourceRequirements`` choose the Celery queue, priority and time limit.
        """
        from .tasks import execute_command

        spec = handler_for(command)
        command_id = command_id or uuid4()
        kwargs = {
            "command_type": command.command_type, "data": command.to_data(), "user_id": actor.user_id,
            "is_staff": actor.is_staff, "command_id": str(command_id),
            "correlation_id": str(correlation_id or current_correlation_id.get() or uuid4()),
        }
        transaction.on_commit(lambda: execute_command.apply_async(kwargs=kwargs, **spec.resources.celery_options()))
        return command_id

    def _chain(self, index: int) -> Next:
        if index == len(self.middleware):
            return self._execute
        return lambda env: self.middleware[index](env, self._chain(index + 1))

    # --- the unit of work -----------------------------------------------------------------
    def _execute(self, env: Envelope) -> CommandResult:
        spec = handler_for(env.command)
        stream = spec.stream(env.command)
        lookups = {name: fn(env.command) for name, fn in spec.lookups.items()}
        retries = getattr(settings, "CQRS_CONFLICT_RETRIES", 5)
        started = time.perf_counter()
        result = self._in_one_statement(spec, env, stream, lookups, started)
        if result is not None:
            return result
        for attempt in range(retries + 1):
            try:
                with transaction.atomic():
                    result = self._decide_and_append(spec, env, stream, lookups, started)
                return result
            except ConcurrencyConflict:
                if attempt == retries:
                    raise
                # Full jitter, so writers that collided do not collide again in lockstep.
                time.sleep(random.uniform(0, min(0.1, 0.002 * 2**attempt)))
                logger.info("version conflict on %s, retrying (%d)", stream, attempt + 1)
            except _AlreadyHandled:
                return replay(env)
        raise AssertionError("unreachable")

    def _in_one_statement(self, spec: HandlerSpec, env: Envelope, stream: str, lookups: Mapping[str, Any],
                          started: float) -> CommandResult | None:
        """Decide on this process's state of the stream and write in one statement; None: take the locked path.

        Only on PostgreSQL, outside any transaction (the statement commits on its own), with a kept
        state the stream has not been seen to move past, for a decision with events that needs
        neither an in-transaction hook nor a snapshot. The statement writes only if the stream
        still ends at the kept state's event, under the stream's lock and after the command-id
        check (``command_sql.append_if_current``).
        """
        if (not getattr(settings, "CQRS_ONE_STATEMENT_COMMANDS", True) or connection.vendor != "postgresql"
                or connection.in_atomic_block or not connection.get_autocommit()):
            return None  # inside a transaction the statement would not commit by itself
        entry = state_cache.current(spec, stream)
        if entry is None or (env.expected_version is not None and env.expected_version != entry.version):
            return None
        ctx = self._context(env, lookups)
        try:
            with decimal.localcontext(MONEY_CONTEXT):
                events, data = _normalise(spec.handler(entry.state, env.command, ctx))
        except DomainError:
            return None  # perhaps refused on a state another process has moved on from: decide under the lock
        new_version = entry.version + len(events)
        if not events or self._needs_transaction(events) or _snapshot_due(spec, entry.version, new_version):
            return None
        new_events = [NewEvent(event=e, metadata=_metadata(env)) for e in events]
        try:
            recorded = command_sql.append_if_current(stream, new_events, entry.version, entry.event_id, now=ctx.now,
                                                     recorded_at=timezone.now(), record=_record(env, new_version, data))
        except (command_sql.Handled, command_sql.CommandIdTaken):
            return replay(env)
        except (command_sql.Stale, ConcurrencyConflict):
            state_cache.hold(stream)  # written by others: lock before reading next time
            return None
        new_state = spec.aggregate.fold(recorded, entry.state)
        state_cache.put(spec, stream, new_state, recorded[-1])
        self._after_commit(recorded)
        return CommandResult(
            command_id=env.command_id, command_type=env.command.command_type, stream_id=stream,
            events=tuple(recorded), position=recorded[-1].position, stream_version=new_version, data=data,
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )

    def _needs_transaction(self, events: Sequence[Event]) -> bool:
        """Whether an in-transaction hook acts on any of these events (a hook that cannot say is assumed to)."""
        types = {e.event_type for e in events}
        return any(getattr(hook, "wants", None) is None or hook.wants(types) for hook in self.in_transaction_hooks)

    def _context(self, env: Envelope, lookups: Mapping[str, Any]) -> CommandContext:
        return CommandContext(
            now=self.clock(), actor=env.actor, command_id=env.command_id, correlation_id=env.correlation_id,
            causation_id=env.causation_id, lookups=lookups,
        )

    def _decide_and_append(self, spec: HandlerSpec, env: Envelope, stream: str, lookups: Mapping[str, Any],
                           started: float) -> CommandResult:
        # The one idempotency check: under the stream's lock, so a concurrent duplicate waits for the
        # first to commit and then finds its record (a check before the lock would only add a query).
        if connection.vendor == "postgresql":
            state, version = state_cache.lock_and_load(spec, stream, env.command_id)
        else:
            if _lock_stream_and_check_handled(stream, env.command_id):
                raise _AlreadyHandled
            state, version = state_cache.load(spec, stream)
        if env.expected_version is not None and env.expected_version != version:
            raise WrongExpectedVersion(
                f"stream {stream} is at version {version}, not {env.expected_version}",
                stream_id=stream, expected_version=env.expected_version, current_version=version,
            )
        ctx = self._context(env, lookups)
        with decimal.localcontext(MONEY_CONTEXT):
            events, data = _normalise(spec.handler(state, env.command, ctx))
        new_events = [NewEvent(event=e, metadata=_metadata(env)) for e in events]
        recorded = _store(stream, env, new_events, version, now=ctx.now, data=data)
        new_version = version + len(recorded)
        # Folded from the stored form (as a later load would decode it), not the handler's objects.
        new_state = spec.aggregate.fold(recorded, state) if spec.aggregate is not None and recorded else state
        _maybe_snapshot(spec, stream, new_state, version, new_version)
        result = CommandResult(
            command_id=env.command_id, command_type=env.command.command_type, stream_id=stream,
            events=tuple(recorded), position=recorded[-1].position if recorded else None,
            stream_version=new_version, data=data, elapsed_ms=(time.perf_counter() - started) * 1000,
        )
        for hook in self.in_transaction_hooks:
            hook(recorded)
        if recorded:
            transaction.on_commit(lambda: self._after_commit(recorded))
            if spec.aggregate is not None:
                transaction.on_commit(lambda: state_cache.put(spec, stream, new_state, recorded[-1]))
        return result

    def _after_commit(self, recorded: Sequence[RecordedEvent]) -> None:
        """Run every after-commit hook; the command is already committed, so a hook's failure is only logged."""
        for hook in self.after_commit_hooks:
            try:
                hook(recorded)
            except Exception:
                logger.exception("after-commit hook %s failed at position %s", getattr(hook, "__name__", hook),
                                 recorded[-1].position)


def _store(stream: str, env: Envelope, new_events: Sequence[NewEvent], version: int, *, now: Any,
           data: Mapping[str, Any]) -> list[RecordedEvent]:
    """Append the events at ``version + 1…`` and record the command's outcome; the events as stored.

    On PostgreSQL with events, one statement (``command_sql``); otherwise the ORM append (no
    savepoints: any error rolls the whole transaction back) and then the record. A command id
    recorded meanwhile on another stream raises ``_AlreadyHandled`` (the rollback undoes ours).
    """
    new_version = version + len(new_events)
    record = _record(env, new_version, data)
    if connection.vendor == "postgresql" and new_events:
        try:
            return command_sql.append_and_record(stream, new_events, version, now=now, recorded_at=timezone.now(),
                                                 record=record)
        except command_sql.CommandIdTaken:
            raise _AlreadyHandled from None
    recorded = append(stream, new_events, version, now=now, savepoint=False)
    outcome = {"position": recorded[-1].position if recorded else None, "stream_version": new_version,
               "data": dict(data)}
    try:
        CommandRecord.objects.create(stream_id=stream, result=outcome, command_id=record["command_id"],
                                     command_type=record["command_type"], fingerprint=record["fingerprint"],
                                     actor_id=record["actor_id"])
    except IntegrityError:
        raise _AlreadyHandled from None
    return recorded


def _record(env: Envelope, new_version: int, data: Mapping[str, Any]) -> dict[str, Any]:
    """The command's record as ``command_sql`` writes it (its position is filled in by the statement)."""
    return {"command_id": env.command_id, "command_type": env.command.command_type,
            "fingerprint": env.command.fingerprint(), "actor_id": env.actor.user_id, "stream_version": new_version,
            "data": data}


def _lock_stream_and_check_handled(stream: str, command_id: UUID) -> bool:
    """Queue behind other commands on the same stream; say whether this command id is handled.

    Like Axon's locking repository: commands on one hot stream wait their turn instead of
    failing each other's appends. The unique (stream, version) constraint stays the arbiter for
    any writer outside the bus. SQLite needs no lock: IMMEDIATE transactions already serialise.
    https://www.postgresql.org/docs/15/explicit-locking.html#ADVISORY-LOCKS
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [stream])
    # A statement of its own, after the lock: in READ COMMITTED a statement's snapshot is taken
    # when it starts, so a check in the locking statement would miss the commit it waited for.
    # https://www.postgresql.org/docs/15/transaction-iso.html#XACT-READ-COMMITTED
    return CommandRecord.objects.filter(pk=command_id).exists()


class _AlreadyHandled(Exception):
    """The command id has a stored outcome (found before, or lost the race to insert it)."""


def load(spec: HandlerSpec, stream: str) -> tuple[Any, int]:
    """Fold a stream into state, starting from its snapshot when one fits; returns (state, version)."""
    aggregate = spec.aggregate
    if aggregate is None:
        return None, stream_version(stream)
    state, version = None, 0
    snap = Snapshot.objects.filter(stream_id=stream).first()
    if snap is not None and snap.state_type == aggregate.name and snap.schema_version == aggregate.snapshot_version:
        state, version = from_json(aggregate.state_type, snap.state), snap.stream_version
    events = read_stream(stream, from_version=version + 1)
    state = aggregate.fold(events, state)
    return state, events[-1].stream_version if events else version


@dataclass(frozen=True)
class _CachedState:
    aggregate: str
    schema_version: int
    version: int
    event_id: UUID | None
    state: Any
    #: The stream was seen written by others since this process last found it unmoved: read under the lock first.
    contended: bool = False


class StateCache:
    """Folded states of the streams this process last committed on, least recently used dropped first.

    An entry is the state after the stream's event ``version`` with that event's id. Loading
    reads the stream from ``version`` on and trusts the entry only when the stored event at
    ``version`` has that id: a rolled-back or emptied stream (tests reset tables) falls back to
    the snapshot. States are shared, so aggregates must never change a state in place (they are
    frozen dataclasses, evolved with ``dataclasses.replace``).
    """

    def __init__(self) -> None:
        self._entries: OrderedDict[str, _CachedState] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, spec: HandlerSpec, stream: str) -> tuple[Any, int]:
        """Like :func:`load`, from this process's last state of the stream when it still holds."""
        entry = self._entry(spec, stream)
        if entry is None:
            return load(spec, stream)
        return self._resume(spec, stream, entry, read_stream(stream, from_version=entry.version))

    def lock_and_load(self, spec: HandlerSpec, stream: str, command_id: UUID) -> tuple[Any, int]:
        """PostgreSQL: lock the stream, check the command id and read the tail in one round trip.

        Raises ``_AlreadyHandled`` when the command id has a record; otherwise like :meth:`load`.
        """
        entry = self._entry(spec, stream)
        handled, events = command_sql.lock_and_read(stream, command_id, None if entry is None else entry.version)
        if handled:
            raise _AlreadyHandled
        if spec.aggregate is None:
            return None, stream_version(stream)
        return self._resume(spec, stream, entry, events) if entry is not None else load(spec, stream)

    def current(self, spec: HandlerSpec, stream: str) -> _CachedState | None:
        """The stream's entry to decide on before reading the store (the one-statement path); None if contended."""
        entry = self._entry(spec, stream)
        return None if entry is None or entry.contended else entry

    def hold(self, stream: str) -> None:
        """The stream moved past its entry under another writer: decide under the lock until it is seen unmoved."""
        with self._lock:
            entry = self._entries.get(stream)
            if entry is not None:
                self._entries[stream] = replace(entry, contended=True)

    def _entry(self, spec: HandlerSpec, stream: str) -> _CachedState | None:
        """The stream's entry, if there is one for this aggregate and its state's shape."""
        aggregate = spec.aggregate
        if aggregate is None:
            return None
        with self._lock:
            entry = self._entries.get(stream)
        if entry is None or (entry.aggregate, entry.schema_version) != (aggregate.name, aggregate.snapshot_version):
            return None
        return entry

    def _resume(self, spec: HandlerSpec, stream: str, entry: _CachedState,
                events: Sequence[RecordedEvent]) -> tuple[Any, int]:
        """Fold ``events`` (the stream from the entry's version on) onto the entry, if the entry still holds."""
        if not events or events[0].stream_version != entry.version or events[0].metadata.event_id != entry.event_id:
            self.discard(stream)
            return load(spec, stream)
        if entry.contended and len(events) == 1:  # nobody wrote since this process did
            with self._lock:
                if self._entries.get(stream) is entry:
                    self._entries[stream] = replace(entry, contended=False)
        return spec.aggregate.fold(events[1:], entry.state), events[-1].stream_version

    def put(self, spec: HandlerSpec, stream: str, state: Any, last: RecordedEvent) -> None:
        """Remember ``state`` as the stream's state after ``last`` (called after commit)."""
        size = getattr(settings, "CQRS_STATE_CACHE_SIZE", 10_000)
        aggregate = spec.aggregate
        if aggregate is None or size <= 0:
            return
        with self._lock:
            before = self._entries.get(stream)
            self._entries[stream] = _CachedState(aggregate.name, aggregate.snapshot_version, last.stream_version,
                                                 last.metadata.event_id, state, before is not None and before.contended)
            self._entries.move_to_end(stream)
            while len(self._entries) > size:
                self._entries.popitem(last=False)

    def discard(self, stream: str | None = None) -> None:
        """Forget one stream, or every stream."""
        with self._lock:
            if stream is None:
                self._entries.clear()
            else:
                self._entries.pop(stream, None)


state_cache = StateCache()


def _snapshot_due(spec: HandlerSpec, version: int, new_version: int) -> bool:
    """Whether going from ``version`` to ``new_version`` crosses a multiple of ``CQRS_SNAPSHOT_EVERY``."""
    every = getattr(settings, "CQRS_SNAPSHOT_EVERY", 100)
    if spec.aggregate is None or new_version == version or every <= 0:
        return False
    return new_version // every != version // every


def _maybe_snapshot(spec: HandlerSpec, stream: str, new_state: Any, version: int, new_version: int) -> None:
    aggregate = spec.aggregate
    if aggregate is None or not _snapshot_due(spec, version, new_version):
        return
    Snapshot.objects.update_or_create(
        stream_id=stream,
        defaults={"stream_version": new_version, "state_type": aggregate.name,
                  "schema_version": aggregate.snapshot_version, "state": to_json(new_state)},
    )


def _normalise(decision: Sequence[Event] | Decision) -> tuple[list[Event], dict[str, Any]]:
    """Events and result data; the data as exact JSON, the same as a replay will return."""
    if isinstance(decision, Decision):
        return list(decision.events), to_json(dict(decision.result))
    return list(decision), {}


def _metadata(env: Envelope) -> EventMetadata:
    request_id = current_request_id.get()
    return EventMetadata(
        event_id=uuid4(), command_id=env.command_id, correlation_id=env.correlation_id,
        causation_id=env.causation_id or env.command_id, actor_id=env.actor.user_id,
        extra={"request_id": request_id} if request_id else {},
    )


def replay(env: Envelope) -> CommandResult:
    """The stored outcome of an already handled command id; a different request is refused."""
    record = CommandRecord.objects.get(pk=env.command_id)
    same_request = record.fingerprint == env.command.fingerprint() and record.command_type == env.command.command_type
    # Another actor's command id is refused like a different body: its result is not theirs to see.
    if not same_request or record.actor_id != env.actor.user_id:
        raise IdempotencyKeyReused(command_id=str(env.command_id))
    rows = StoredEvent.objects.filter(command_id=env.command_id).order_by("position").values(*_COLUMNS)
    stored = record.result
    return CommandResult(
        command_id=env.command_id, command_type=record.command_type, stream_id=record.stream_id,
        events=tuple(_recorded(r) for r in rows), position=stored.get("position"),
        stream_version=stored.get("stream_version", 0), data=stored.get("data", {}), replayed=True,
    )


# --- middleware ---------------------------------------------------------------------------
def log_and_time(env: Envelope, call_next: Next) -> CommandResult:
    """Log every command with its correlation id, outcome and time; tell the observers."""
    started = time.perf_counter()
    name = env.command.command_type
    try:
        result = call_next(env)
    except DomainError as exc:
        elapsed = (time.perf_counter() - started) * 1000
        logger.warning("command %s refused: %s (%.1f ms)", name, exc.code, elapsed, extra={**_log_extra(env), "code": exc.code})
        _observe(name, exc.code, elapsed)
        raise
    except Exception:
        elapsed = (time.perf_counter() - started) * 1000
        logger.exception("command %s failed (%.1f ms)", name, elapsed, extra=_log_extra(env))
        _observe(name, "error", elapsed)
        raise
    elapsed = (time.perf_counter() - started) * 1000
    outcome = "replayed" if result.replayed else "ok"
    if logger.isEnabledFor(logging.INFO):  # the ids' strings are made only for a record that is written
        logger.info("command %s %s at position %s (%.1f ms)", name, outcome, result.position, elapsed,
                    extra={**_log_extra(env), "position": result.position})
    _observe(name, outcome, elapsed)
    return result


def _log_extra(env: Envelope) -> dict[str, Any]:
    return {"command_type": env.command.command_type, "command_id": str(env.command_id),
            "correlation_id": str(env.correlation_id)}


def authorize(env: Envelope, call_next: Next) -> CommandResult:
    """Ask the handler's authoriser, if it has one, before anything is read or written."""
    spec = handler_for(env.command)
    if spec.authorize is not None:
        spec.authorize(env.command, env.actor)
    return call_next(env)


def _observe(name: str, outcome: str, elapsed_ms: float) -> None:
    for observer in command_bus.observers:
        observer(name, outcome, elapsed_ms)


command_bus = CommandBus()
