"""The event store API: append with optimistic concurrency, read a stream, read the global order.

Gap-free global order (DESIGN promise 3)
----------------------------------------
Positions come from the table's identity sequence, so on PostgreSQL concurrent writers take
positions in one order and commit in another: a reader doing ``WHERE position > checkpoint``
can pass position 10 while its transaction is still open and never see it. Serialising all
appends would cap writes at the commit rate, so writers stay parallel and the *reader* is careful:

* It reads positions after its cursor and accepts only the contiguous run. At the first missing
  position it stops: the hole is either a transaction still in flight, or a permanent hole (a
  rolled-back append; sequences do not roll back).
* To tell them apart it records a horizon: a transaction id assigned *during* the read, after
  the read's snapshot was taken (the reading transaction's own xid, which its first statement
  that needs one draws; ``pg_current_xact_id()``). Every transaction that holds a missing
  position at or below the highest position it saw took its xid before that snapshot, because
  ``append`` takes its xid before it draws positions, and drew before the row seen above it
  committed; xids are handed out in increasing order, so all of them are below the horizon.
  Once ``pg_snapshot_xmin`` of a later read's snapshot has passed the horizon, all of those
  transactions had ended before that read; a position it still misses is permanent and skipped.
  (The snapshot's own ``xmax`` is *not* such a bound: it is one past the latest *completed* xid,
  so a younger transaction that drew the lower position can be at or above it. Found under CPU
  load: such a hole was taken for permanent while its transaction still ran, and skipped.)
  https://www.postgresql.org/docs/15/functions-info.html#FUNCTIONS-PG-SNAPSHOT
* The cost: a long-running *writing* transaction anywhere holds readers at its hole. Connections
  carry ``idle_in_transaction_session_timeout`` to bound it, and projection lag shows it.

On SQLite there is one writer at a time and positions are drawn under the write lock, so a
committed row never sits above an uncommitted one: any hole below a visible row is permanent.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from .backends.postgresql import prepared
from .errors import ConcurrencyConflict, WrongExpectedVersion
from .events import Event, EventMetadata, RecordedEvent
from .models import StoredEvent
from .serialization import build_dataclass, parse_json, sets_fields_only

ANY_VERSION = -1
NO_STREAM = 0

_COLUMNS = (
    "position", "stream_id", "stream_version", "event_type", "schema_version", "data",
    "event_id", "command_id", "correlation_id", "causation_id", "actor_id", "metadata", "recorded_at",
)


@dataclass(frozen=True, kw_only=True)
class NewEvent:
    """An event to append with the metadata it carries."""

    event: Event
    metadata: EventMetadata


def append(
    stream_id: str,
    events: Sequence[Event | NewEvent],
    expected_version: int,
    *,
    now: dt.datetime | None = None,
    strict: bool = False,
    savepoint: bool = True,
) -> list[RecordedEvent]:
    """Append events to a stream, all or none, if the stream is at ``expected_version``.

    ``expected_version`` is the stream's current version (0 for a new stream) or ``ANY_VERSION``.
    A mismatch raises ``ConcurrencyConflict`` (retryable: re-read and decide again), or
    ``WrongExpectedVersion`` with ``strict=True`` (the client's own precondition failed).
    Inside a transaction the append is a savepoint, so a caller may go on after a conflict;
    ``savepoint=False`` saves those round trips for a caller that rolls back its whole
    transaction on any error (the command bus): after an error the transaction is unusable.
    """
    if not events:
        return []
    now = now or timezone.now()
    with transaction.atomic(savepoint=savepoint):
        current = _current_version_taking_xid(stream_id)
        if expected_version != ANY_VERSION and current != expected_version:
            raise _version_error(stream_id, expected_version, current, strict)
        rows = [_row(stream_id, current + i, item, now) for i, item in enumerate(events, start=1)]
        try:
            with transaction.atomic(savepoint=savepoint):
                StoredEvent.objects.bulk_create(rows)
        except IntegrityError as exc:
            if "stream_version" not in str(exc) and "cqrs_event_stream_version_uniq" not in str(exc):
                raise
            raise _version_error(stream_id, expected_version, None, strict) from exc
    return [_recorded(row) for row in rows]


def _version_error(stream: str, expected: int, current: int | None, strict: bool) -> ConcurrencyConflict:
    detail = f"stream {stream} is not at version {expected}" + ("" if current is None else f" (it is at {current})")
    error_type = WrongExpectedVersion if strict else ConcurrencyConflict
    return error_type(detail, stream_id=stream, expected_version=expected, current_version=current)


def _current_version_taking_xid(stream_id: str) -> int:
    """The stream's version; on PostgreSQL also gives the transaction its xid before positions are drawn."""
    if connection.vendor == "postgresql":
        sql = "SELECT pg_current_xact_id(), COALESCE(MAX(stream_version), 0) FROM cqrs_event WHERE stream_id = %s"
    else:
        sql = "SELECT NULL, COALESCE(MAX(stream_version), 0) FROM cqrs_event WHERE stream_id = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [stream_id])
        return int(cursor.fetchone()[1])


def _row(stream_id: str, version: int, item: Event | NewEvent, now: dt.datetime) -> StoredEvent:
    event, meta = (item.event, item.metadata) if isinstance(item, NewEvent) else (item, EventMetadata(event_id=uuid4()))
    return StoredEvent(
        stream_id=stream_id, stream_version=version, event_type=event.event_type,
        schema_version=event.schema_version, data=event.to_data(), event_id=meta.event_id,
        command_id=meta.command_id, correlation_id=meta.correlation_id, causation_id=meta.causation_id,
        actor_id=meta.actor_id, metadata=meta.extra, recorded_at=now,
    )


def _recorded(row: StoredEvent | dict[str, Any]) -> RecordedEvent:
    get = row.__getitem__ if isinstance(row, dict) else row.__getattribute__
    return RecordedEvent(
        position=get("position"), stream_id=get("stream_id"), stream_version=get("stream_version"),
        event_type=get("event_type"), schema_version=get("schema_version"), data=get("data"),
        metadata=EventMetadata(
            event_id=_uuid(get("event_id")), command_id=_uuid(get("command_id")),
            correlation_id=_uuid(get("correlation_id")), causation_id=_uuid(get("causation_id")),
            actor_id=get("actor_id"), extra=get("metadata") or {},
        ),
        recorded_at=get("recorded_at"),
    )


def _uuid(value: Any) -> UUID | None:
    return value if value is None or isinstance(value, UUID) else UUID(str(value))


def read_stream(stream_id: str, *, from_version: int = 1) -> list[RecordedEvent]:
    """The events of one stream from a version on, in stream order."""
    rows = StoredEvent.objects.filter(stream_id=stream_id, stream_version__gte=from_version)
    return [_recorded(r) for r in rows.order_by("stream_version").values(*_COLUMNS)]


def read_command_events(command_id: UUID) -> list[RecordedEvent]:
    """The events one handled command stored, in order (none for an unknown or refused command id)."""
    rows = StoredEvent.objects.filter(command_id=command_id)
    return [_recorded(r) for r in rows.order_by("position").values(*_COLUMNS)]


def stream_version(stream_id: str) -> int:
    """The stream's current version (0 when it has no events)."""
    last = StoredEvent.objects.filter(stream_id=stream_id).order_by("-stream_version").values_list("stream_version", flat=True).first()
    return last or 0


def head_position() -> int:
    """The highest position stored (visible to this transaction); 0 for an empty store."""
    last = StoredEvent.objects.order_by("-position").values_list("position", flat=True).first()
    return last or 0


def read_all(after_position: int = 0, *, limit: int = 1000, types: Iterable[str] | None = None) -> list[RecordedEvent]:
    """Events after a position as this transaction sees them.

    This is the *naive* read: under concurrent writers it can pass positions whose transactions
    are still open. Projections use :func:`read_committed` instead.
    """
    rows = StoredEvent.objects.filter(position__gt=after_position)
    if types is not None:
        rows = rows.filter(event_type__in=list(types))
    return [_recorded(r) for r in rows.order_by("position").values(*_COLUMNS)[:limit]]


def iter_all(after_position: int = 0, *, batch_size: int = 1000) -> Iterator[RecordedEvent]:
    """All events after a position, in batches (for exports and rebuilds of a quiet store)."""
    while batch := read_all(after_position, limit=batch_size):
        yield from batch
        after_position = batch[-1].position


@dataclass(frozen=True)
class Cursor:
    """Where a gap-free reader stands: all positions ``<= position`` are delivered.

    ``gap_upto`` and ``gap_horizon`` remember a hole seen below ``gap_upto``: once the oldest
    running transaction id is at or past ``gap_horizon``, holes at or below ``gap_upto`` that are
    still empty are permanent.
    """

    position: int = 0
    gap_upto: int | None = None
    gap_horizon: int | None = None


@dataclass(frozen=True)
class Batch:
    """What one read returned: events to apply, the cursor after them, and whether a hole held it."""

    events: list[RecordedEvent]
    cursor: Cursor
    waiting_on_gap: bool
    #: Positions the read returned (of any type): as many as its limit means more may follow at once.
    read: int = 0


def read_committed(cursor: Cursor, *, limit: int = 1000, types: Iterable[str] | None = None) -> Batch:
    """The next events after ``cursor`` that can never be overtaken by a later commit.

    Returns the events (of ``types``, if given) and the new cursor; the cursor may advance past
    positions of other types and past permanent holes even when no event is returned. On
    PostgreSQL the read takes its transaction's xid as the horizon of a hole it stops at, so it
    must run before the transaction has one (autocommit, or first in its block): the projection
    runner locks its state row in the same statement instead (``projections``).
    """
    if connection.vendor == "postgresql":
        if connection.in_atomic_block and _has_xid():
            raise ValueError("read_committed must run before its transaction has an xid (see the module docstring)")
        sql, params = (_READ_ALL, [cursor.position, limit]) if types is None else (
            _READ_TYPED, [sorted(types), cursor.position, limit])
        rows = prepared.execute(connection, sql, params, label="read_committed")
        if not rows:
            return Batch([], cursor, False)
        return batch_from_rows(cursor, rows, rows[0][-2], rows[0][-1])
    # SQLite: one writer at a time draws positions under the write lock, so every hole is permanent.
    rows = _rows_after(cursor.position, limit, full=types is None)
    if not rows:
        return Batch([], cursor, False)
    safe, stopped = _contiguous_prefix(cursor.position, [row["position"] for row in rows], 2**63)
    if types is None:
        events = [_recorded(r) for r in rows if r["position"] <= safe]
    else:
        typed = StoredEvent.objects.filter(position__gt=cursor.position, position__lte=safe, event_type__in=list(types))
        events = [_recorded(r) for r in typed.order_by("position").values(*_COLUMNS)]
    return Batch(events, _next_cursor(cursor, safe, stopped, rows[-1]["position"], cursor.gap_horizon is not None, 0),
                 stopped, len(rows))


def batch_from_rows(cursor: Cursor, rows: Sequence[Sequence[Any]], oldest_running: int, horizon: int) -> Batch:
    """PostgreSQL: the batch of event rows read after ``cursor`` (``READ_COLUMNS`` first, in position order).

    ``oldest_running`` is the read snapshot's ``xmin``; ``horizon`` an xid assigned after that
    snapshot was taken (see the module docstring).
    """
    passed = cursor.gap_horizon is not None and oldest_running >= cursor.gap_horizon
    # Holes at or below this position are known to be permanent.
    resolved_upto = (cursor.gap_upto or 0) if passed else 0
    safe, stopped = _contiguous_prefix(cursor.position, [row[0] for row in rows], resolved_upto)
    events = [_recorded_pg(row) for row in rows if row[0] <= safe and row[1]]
    next_cursor = _next_cursor(cursor, safe, stopped, rows[-1][0], passed, horizon)
    return Batch(events, next_cursor, stopped, len(rows))


def _has_xid() -> bool:
    with connection.cursor() as db:
        db.execute("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
        return bool(db.fetchone()[0])


#: The columns of an event row as read for projections: its position, whether it is of a wanted
#: type, and the other columns for wanted rows only (NULLs for the others, which the reader only
#: counts). ``{q}`` is the alias of the rows read.
READ_COLUMNS = (
    "{q}.position, {q}.wanted, "
    + ", ".join(f"CASE WHEN {{q}}.wanted THEN {{q}}.{c} END" for c in _COLUMNS[1:-1])
    # recorded_at as microseconds since the epoch (exact: extract gives a numeric): the backend's
    # timestamptz loader is Python, and was a fifth of a rebuild's reading time.
    + ", CASE WHEN {q}.wanted THEN (extract(epoch FROM {q}.recorded_at) * 1000000)::int8 END"
)
#: How many columns ``READ_COLUMNS`` has.
READ_WIDTH = len(_COLUMNS) + 1
#: The rows after a position, in position order, of the wanted types (``{wanted}``).
READ_AFTER = ("SELECT *, {wanted} AS wanted FROM cqrs_event WHERE position > {after} "
              "ORDER BY position LIMIT %s::bigint")
WANTED_TYPES = "event_type = ANY(%s::text[])"
#: The read's snapshot's xmin and a horizon assigned after it: the transaction's xid, which this
#: statement assigns (the caller runs it before the transaction has one).
SNAPSHOT = ("SELECT pg_snapshot_xmin(c)::text::bigint AS xmin, pg_current_xact_id()::text::bigint AS horizon "
            "FROM pg_current_snapshot() c")

#: One statement, so one snapshot: the rows, the snapshot's xmin and the horizon.
_READ = (
    "SELECT " + READ_COLUMNS.format(q="q") + ", s.xmin, s.horizon\n"
    "FROM (" + READ_AFTER.format(wanted="{wanted}", after="%s::bigint") + ") q\n"
    "CROSS JOIN (" + SNAPSHOT + ") s\n"
    "ORDER BY q.position"
)
_READ_ALL = _READ.format(wanted="TRUE")
_READ_TYPED = _READ.format(wanted=WANTED_TYPES)


def _recorded_pg(row: Sequence[Any]) -> RecordedEvent:
    """A row of ``READ_COLUMNS`` as read with Django's PostgreSQL backend (jsonb arrives as text).

    Built with ``build_dataclass``: a projection builds one per stored row, and the frozen
    dataclasses' ``__init__`` (one ``object.__setattr__`` per field) was a tenth of its reading.
    """
    (position, _, stream_id, stream_version, event_type, schema_version, data, event_id, command_id, correlation_id,
     causation_id, actor_id, extra, recorded_at) = row[:READ_WIDTH]
    metadata = build_dataclass(EventMetadata, {
        "event_id": event_id, "command_id": command_id, "correlation_id": correlation_id,
        "causation_id": causation_id, "actor_id": actor_id, "extra": {} if extra == "{}" else _json(extra)})
    return build_dataclass(RecordedEvent, {
        "position": position, "stream_id": stream_id, "stream_version": stream_version, "event_type": event_type,
        "schema_version": schema_version, "data": _json(data), "metadata": metadata,
        "recorded_at": _EPOCH + dt.timedelta(microseconds=recorded_at)})


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
assert sets_fields_only(RecordedEvent) and sets_fields_only(EventMetadata), "_recorded_pg builds them directly"


def _json(value: Any) -> Any:
    return parse_json(value) if isinstance(value, (str, bytes)) else value


def _rows_after(position: int, limit: int, *, full: bool) -> list[dict[str, Any]]:
    rows = StoredEvent.objects.filter(position__gt=position).order_by("position")
    return list(rows.values(*(_COLUMNS if full else ("position",)))[:limit])


def _contiguous_prefix(start: int, positions: list[int], resolved_upto: int) -> tuple[int, bool]:
    """The last position safe to deliver, and whether reading stopped at an unresolved hole."""
    safe = start
    for position in positions:
        if position != safe + 1 and position - 1 > resolved_upto:
            return safe, True
        safe = position
    return safe, False


def _next_cursor(cursor: Cursor, safe: int, stopped: bool, seen_upto: int, passed: bool, horizon: int) -> Cursor:
    """Where to stand after a read; ``horizon`` is an xid assigned after the read's snapshot (0 on SQLite)."""
    if not stopped:
        return Cursor(safe)
    if cursor.gap_upto is not None and not passed and safe < cursor.gap_upto:
        # Keep the older horizon: refreshing it under steady load would never let it pass.
        return Cursor(safe, cursor.gap_upto, cursor.gap_horizon)
    return Cursor(safe, seen_upto, horizon)
