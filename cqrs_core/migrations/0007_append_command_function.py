"""On PostgreSQL, a whole command in one statement when the bus already holds the stream's state.

``cqrs_append_command(stream, version, tail_event, events, now, command, command_type,
fingerprint, actor, data, recorded_at)`` runs, in the one transaction of its statement:

1. the stream's advisory lock (commands on one stream still queue, as on the two-statement path);
2. ``pg_current_xact_id()``: the transaction's xid is assigned before any position is drawn, which
   ``cqrs_core.store``'s gap-free reader relies on (an INSERT alone draws its positions first and
   takes its xid only when it writes its first row);
3. whether the command id is handled: ``outcome`` ``handled``, nothing written;
4. whether the stream's last event is still ``(version, tail_event)``, the state the caller
   decided on: if not, ``outcome`` ``stale``, nothing written;
5. the events (a JSON array, in order: positions follow versions) and the command's record, whose
   result gets the last event's position: ``outcome`` ``appended`` with the positions.

Each query of the VOLATILE function takes its own snapshot in READ COMMITTED, so the checks see
the commit the lock waited for. The unique ``(stream_id, stream_version)`` constraint and the
record's primary key stay the arbiters for writers outside the bus.
https://www.postgresql.org/docs/15/xfunc-volatility.html
https://www.postgresql.org/docs/15/functions-info.html#FUNCTIONS-PG-SNAPSHOT
"""
from __future__ import annotations

from django.db import migrations

from ._postgres import on_postgres

CREATE = """
CREATE OR REPLACE FUNCTION cqrs_append_command(
    p_stream text, p_version bigint, p_tail_event uuid, p_events jsonb, p_now timestamptz, p_command uuid,
    p_command_type text, p_fingerprint text, p_actor bigint, p_data jsonb, p_recorded_at timestamptz)
RETURNS TABLE (outcome text, positions bigint[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tail_version bigint;
    tail_event uuid;
    drawn bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_stream, 0));
    PERFORM pg_current_xact_id();
    IF EXISTS (SELECT 1 FROM cqrs_command AS c WHERE c.command_id = p_command) THEN
        RETURN QUERY SELECT 'handled'::text, NULL::bigint[];
        RETURN;
    END IF;
    SELECT e.stream_version, e.event_id INTO tail_version, tail_event
        FROM cqrs_event AS e WHERE e.stream_id = p_stream ORDER BY e.stream_version DESC LIMIT 1;
    IF tail_version IS DISTINCT FROM p_version OR tail_event IS DISTINCT FROM p_tail_event THEN
        RETURN QUERY SELECT 'stale'::text, NULL::bigint[];
        RETURN;
    END IF;
    WITH ev AS (
        INSERT INTO cqrs_event (stream_id, stream_version, event_type, schema_version, data, event_id, command_id,
                                correlation_id, causation_id, actor_id, metadata, recorded_at)
        SELECT p_stream, p_version + x.n, x.e->>'event_type', (x.e->>'schema_version')::smallint, x.e->'data',
               (x.e->>'event_id')::uuid, (x.e->>'command_id')::uuid, (x.e->>'correlation_id')::uuid,
               (x.e->>'causation_id')::uuid, (x.e->>'actor_id')::bigint, x.e->'metadata', p_now
        FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, n)
        ORDER BY x.n
        RETURNING "position", stream_version)
    SELECT array_agg(ev.position ORDER BY ev.stream_version) INTO drawn FROM ev;
    INSERT INTO cqrs_command (command_id, command_type, fingerprint, actor_id, stream_id, result, recorded_at)
    VALUES (p_command, p_command_type, p_fingerprint, p_actor, p_stream,
            jsonb_build_object('position', drawn[cardinality(drawn)],
                               'stream_version', p_version + cardinality(drawn), 'data', p_data),
            p_recorded_at);
    RETURN QUERY SELECT 'appended'::text, drawn;
END;
$$;
"""

DROP = ("DROP FUNCTION IF EXISTS cqrs_append_command(text, bigint, uuid, jsonb, timestamptz, uuid, text, text, bigint,"
        " jsonb, timestamptz);")


class Migration(migrations.Migration):
    dependencies = [("cqrs_core", "0006_lock_and_read_function")]
    operations = [migrations.RunPython(on_postgres(CREATE), on_postgres(DROP))]
