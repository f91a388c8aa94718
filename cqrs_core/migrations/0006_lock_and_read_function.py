"""On PostgreSQL, the command bus's first round trip as one function: lock the stream, then read.

``cqrs_lock_and_read(stream, command_id, from_version)`` takes the stream's advisory lock and
then, in a query of its own, answers whether the command id is handled, the transaction's id
and the stream's events from ``from_version`` on. It is VOLATILE, so in READ COMMITTED its
second query takes a new snapshot after the lock is held and sees the commit it waited for;
PL/pgSQL prepares that query once per session, so it is not planned on every command as a
statement sent as text would be. https://www.postgresql.org/docs/15/xfunc-volatility.html
https://www.postgresql.org/docs/15/plpgsql-implementation.html#PLPGSQL-PLAN-CACHING

The result columns are ``cqrs_event``'s (``cqrs_core.store._COLUMNS``) after ``handled`` and
``xid``: a migration that changes those columns replaces this function too.
"""
from __future__ import annotations

from django.db import migrations

from ._postgres import on_postgres

CREATE = """
CREATE OR REPLACE FUNCTION cqrs_lock_and_read(p_stream text, p_command uuid, p_from bigint)
RETURNS TABLE (handled boolean, xid text, "position" bigint, stream_id varchar, stream_version bigint,
               event_type varchar, schema_version smallint, data jsonb, event_id uuid, command_id uuid,
               correlation_id uuid, causation_id uuid, actor_id bigint, metadata jsonb,
               recorded_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_stream, 0));
    RETURN QUERY
        SELECT h.handled, h.xid::text, e.position, e.stream_id, e.stream_version, e.event_type,
               e.schema_version, e.data, e.event_id, e.command_id, e.correlation_id, e.causation_id,
               e.actor_id, e.metadata, e.recorded_at
        FROM (SELECT EXISTS (SELECT 1 FROM cqrs_command AS c WHERE c.command_id = p_command) AS handled,
                     pg_current_xact_id() AS xid) AS h
        LEFT JOIN cqrs_event AS e ON e.stream_id = p_stream AND e.stream_version >= p_from
        ORDER BY e.stream_version;
END;
$$;
"""

DROP = "DROP FUNCTION IF EXISTS cqrs_lock_and_read(text, uuid, bigint);"


class Migration(migrations.Migration):
    dependencies = [("cqrs_core", "0005_ops_records")]
    operations = [migrations.RunPython(on_postgres(CREATE), on_postgres(DROP))]
