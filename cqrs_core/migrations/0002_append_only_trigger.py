"""On PostgreSQL, the database itself refuses to change or remove stored events.

TRUNCATE is refused too unless the session sets ``ledgerline.allow_truncate = on``: the test
suite sets it on its connections to reset tables between tests; the application never does.
"""
from __future__ import annotations

from django.db import migrations

from ._postgres import on_postgres

CREATE = """
CREATE OR REPLACE FUNCTION cqrs_event_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_setting('ledgerline.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'cqrs_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER cqrs_event_no_update_delete BEFORE UPDATE OR DELETE ON cqrs_event
    FOR EACH ROW EXECUTE FUNCTION cqrs_event_append_only();
CREATE TRIGGER cqrs_event_no_truncate BEFORE TRUNCATE ON cqrs_event
    FOR EACH STATEMENT EXECUTE FUNCTION cqrs_event_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS cqrs_event_no_truncate ON cqrs_event;
DROP TRIGGER IF EXISTS cqrs_event_no_update_delete ON cqrs_event;
DROP FUNCTION IF EXISTS cqrs_event_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("cqrs_core", "0001_initial")]
    operations = [migrations.RunPython(on_postgres(CREATE), on_postgres(DROP))]
