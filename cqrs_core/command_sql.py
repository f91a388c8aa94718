"""The command bus's statements on PostgreSQL: one round trip to lock and read, one to write.

The bus's unit of work (``bus.CommandBus._decide_and_append``) needs, in one transaction: the
stream's lock, whether the command id is already handled, the events after the state it holds,
a transaction id taken before positions are drawn (``store``'s gap-free reader relies on it),
then the new events and the command's record. Through the ORM that is seven statements and a
query compilation each; here it is two statements, written once:

* ``lock_and_read``: the function ``cqrs_lock_and_read`` (migration 0006) takes
  ``pg_advisory_xact_lock`` and then, as a query of its own (so its READ COMMITTED snapshot is
  taken after the lock is held and sees the commit it waited for), reads the handled check,
  ``pg_current_xact_id()`` and the stream's events from a version on. Its query is planned once
  per session (PL/pgSQL caches it); the call travels behind the transaction's ``BEGIN``.
* ``append_and_record``: the events and the command record in one ``INSERT`` with a
  data-modifying CTE; the record's ``result`` gets the last event's position in the same
  statement. The unique ``(stream_id, stream_version)`` constraint stays the arbiter: a writer
  outside the bus that got there first makes it fail with ``ConcurrencyConflict``, and a
  command id recorded meanwhile on another stream with ``CommandIdTaken``; either way the
  caller's transaction is rolled back whole.

Neither is planned on every command, as a statement bound into its text by Django's cursors is:
that was half of the PostgreSQL backend's CPU per command (0.57 -> 0.32 ms, same statements,
one connection, back to back). The ``INSERT`` is bound server-side and prepared once per
connection (``backends.postgresql.prepared``).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from uuid import UUID

from django.db import IntegrityError, connection

from .backends.postgresql import prepared
from .errors import ConcurrencyConflict
from .events import RecordedEvent
from .serialization import parse_json
from .store import _COLUMNS, NewEvent, _recorded as _stored

#: Stream versions start at 1; a ``from_version`` past any stream reads no events.
NO_EVENTS = 2**62

#: Migration ``0006_lock_and_read_function``: the lock, then (a new snapshot) the handled check, the xid and the tail.
_LOCK_AND_READ = "SELECT * FROM cqrs_lock_and_read(%s, %s, %s)"
_INSERT_EVENTS = _COLUMNS[1:]  # all but the position, which the identity column draws
_EVENT_VALUES = ("(%s::text, %s::bigint, %s::text, %s::smallint, %s::jsonb, %s::uuid, %s::uuid, %s::uuid, %s::uuid,"
                 " %s::bigint, %s::jsonb, %s::timestamptz)")
_INSERT_TEMPLATE = (
    "WITH ev AS (INSERT INTO cqrs_event ({columns}) VALUES {values} RETURNING position, stream_version),\n"
    "cmd AS (INSERT INTO cqrs_command (command_id, command_type, fingerprint, actor_id, stream_id, result, recorded_at)\n"
    "        SELECT %s::uuid, %s::text, %s::text, %s::bigint, %s::text,\n"
    "               jsonb_build_object('position', max(ev.position), 'stream_version', %s::bigint, 'data', %s::jsonb),\n"
    "               %s::timestamptz FROM ev)\n"
    "SELECT position FROM ev ORDER BY stream_version"
)
#: The INSERT's text per number of events (a command appends one or a few): one prepared statement each.
_INSERTS: dict[int, str] = {}


#: Migration ``0007_append_command_function``: lock, xid, handled check, tail check, then the events and the record.
_APPEND_COMMAND = ("SELECT * FROM cqrs_append_command(%s::text, %s::bigint, %s::uuid, %s::jsonb, %s::timestamptz,"
                   " %s::uuid, %s::text, %s::text, %s::bigint, %s::jsonb, %s::timestamptz)")


class CommandIdTaken(Exception):
    """The command id was recorded by another transaction (on another stream) first."""


class Handled(Exception):
    """The command id already has a record: nothing was written."""


class Stale(Exception):
    """The stream no longer ends at the event the caller's state was folded to: nothing was written."""


def lock_and_read(stream_id: str, command_id: UUID, from_version: int | None) -> tuple[bool, list[RecordedEvent]]:
    """Lock the stream; whether the command id is handled, and the stream's events from ``from_version`` on.

    ``from_version=None`` reads no events (the caller loads from the snapshot). Either way the
    transaction holds an xid when this returns.
    """
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_AND_READ, [stream_id, command_id, NO_EVENTS if from_version is None else from_version])
        rows = cursor.fetchall()
    handled = bool(rows[0][0])
    events = [_decode(row[2:]) for row in rows if row[2] is not None]
    return handled, events


def append_and_record(stream_id: str, events: Sequence[NewEvent], version: int, *, now: dt.datetime,
                      record: Mapping[str, Any], recorded_at: dt.datetime) -> list[RecordedEvent]:
    """Insert ``events`` at versions ``version + 1…`` and the command's record; the events as stored.

    ``record`` holds the record's ``command_id``, ``command_type``, ``fingerprint``, ``actor_id``,
    ``stream_version`` and ``data`` (its ``position`` is the last event's, filled in by the statement).
    """
    if not events:
        raise ValueError("append_and_record needs at least one event")
    rows = [_row(stream_id, version + i, item, now) for i, item in enumerate(events, start=1)]
    sql = _insert_sql(len(rows))
    params: list[Any] = [value for row in rows for value in row]
    params += [record["command_id"], record["command_type"], record["fingerprint"], record["actor_id"], stream_id,
               record["stream_version"], json.dumps(record["data"]), recorded_at]
    with _mapped_integrity_errors(stream_id, version):
        positions = [position for (position,) in prepared.execute(connection, sql, params, label="append_and_record")]
    return [_recorded(stream_id, position, row, item)
            for position, row, item in zip(positions, rows, events, strict=True)]


@contextlib.contextmanager
def _mapped_integrity_errors(stream_id: str, version: int) -> Iterator[None]:
    """A lost race on the stream's version is a ``ConcurrencyConflict``; on the command id, ``CommandIdTaken``."""
    try:
        yield
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) or str(exc)
        if "cqrs_event_stream_version_uniq" in constraint:
            raise ConcurrencyConflict(f"stream {stream_id} is not at version {version}", stream_id=stream_id,
                                      expected_version=version, current_version=None) from exc
        if "cqrs_command_pkey" in constraint:
            raise CommandIdTaken from exc
        raise


def append_if_current(stream_id: str, events: Sequence[NewEvent], version: int, tail_event_id: UUID, *,
                      now: dt.datetime, record: Mapping[str, Any], recorded_at: dt.datetime) -> list[RecordedEvent]:
    """In one statement (its own transaction): append ``events`` if the stream still ends at ``(version, tail_event_id)``.

    Raises ``Handled`` when the command id has a record and ``Stale`` when the stream moved (both
    write nothing), ``ConcurrencyConflict`` / ``CommandIdTaken`` as ``append_and_record`` does.
    Must run outside a transaction: its commit is the statement's own.
    """
    if not events:
        raise ValueError("append_if_current needs at least one event")
    rows = [_row(stream_id, version + i, item, now) for i, item in enumerate(events, start=1)]
    params = [stream_id, version, tail_event_id, _events_json(rows), now, record["command_id"],
              record["command_type"], record["fingerprint"], record["actor_id"], json.dumps(record["data"]), recorded_at]
    with _mapped_integrity_errors(stream_id, version):
        ((outcome, positions),) = prepared.execute(connection, _APPEND_COMMAND, params, label="append_command")
    if outcome == "handled":
        raise Handled
    if outcome == "stale":
        raise Stale
    return [_recorded(stream_id, position, row, item)
            for position, row, item in zip(positions, rows, events, strict=True)]


def _events_json(rows: Sequence[tuple[Any, ...]]) -> str:
    """``_row``s as one JSON array for ``cqrs_append_command``; their data and metadata texts go in as they are."""
    parts = []
    for row in rows:
        head = json.dumps({"event_type": row[2], "schema_version": row[3], "event_id": str(row[5]),
                           "command_id": _text(row[6]), "correlation_id": _text(row[7]),
                           "causation_id": _text(row[8]), "actor_id": row[9]})
        parts.append(f'{head[:-1]}, "data": {row[4]}, "metadata": {row[10]}}}')
    return f"[{', '.join(parts)}]"


def _text(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def _insert_sql(count: int) -> str:
    sql = _INSERTS.get(count)
    if sql is None:
        sql = _INSERTS[count] = _INSERT_TEMPLATE.format(columns=", ".join(_INSERT_EVENTS),
                                                        values=", ".join([_EVENT_VALUES] * count))
    return sql


def _row(stream_id: str, version: int, item: NewEvent, now: dt.datetime) -> tuple[Any, ...]:
    event, meta = item.event, item.metadata
    return (stream_id, version, event.event_type, event.schema_version, json.dumps(event.to_data()), meta.event_id,
            meta.command_id, meta.correlation_id, meta.causation_id, meta.actor_id, json.dumps(meta.extra), now)


def _recorded(stream_id: str, position: int, row: tuple[Any, ...], item: NewEvent) -> RecordedEvent:
    # The data as the handler's event encodes it: what a later read decodes to (JSON round trip).
    return RecordedEvent(position=position, stream_id=stream_id, stream_version=row[1], event_type=row[2],
                         schema_version=row[3], data=parse_json(row[4]), metadata=item.metadata, recorded_at=row[11])


def _decode(row: Sequence[Any]) -> RecordedEvent:
    stored = dict(zip(_COLUMNS, row, strict=True))
    return _stored({**stored, "data": _json(stored["data"]), "metadata": _json(stored["metadata"])})


def _json(value: Any) -> Any:
    """jsonb as Django's backend hands it over: text to parse (its loader leaves decoding to JSONField)."""
    return parse_json(value) if isinstance(value, (str, bytes)) else value
