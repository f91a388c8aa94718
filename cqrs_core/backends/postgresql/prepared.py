"""Statements bound server-side and prepared once per connection: the hot paths Django would plan every time.

Django's psycopg cursors bind values into the statement's text (``ClientCursor``), so PostgreSQL
parses and plans every statement anew. For the statements that run on every command, every
request or every projection batch, that was about half of the backend's CPU (the command's
statements: 0.57 -> 0.32 ms per command, same statements, one connection, back to back). Here
they go through a plain ``psycopg.Cursor`` on the same connection with ``prepare=True``:
parsed and planned once per connection, then executed by name.

What Django's cursor wrapper would add is added here: the connection is opened if needed, a
broken atomic block refuses, database errors arrive as ``django.db`` errors, and each statement
is logged where Django logs queries (``connection.queries`` when debugging and under
``CaptureQueriesContext``). A transaction's pending ``BEGIN`` (``base.BeginCursor``) travels in
the same round trip, as a pipeline; psycopg's pipeline costs the client more CPU than it saves
the server, so the hot paths call this inside a transaction that an earlier statement began.

Every parameter should carry its type in the text (``%s::bigint``): a prepared statement fixes
its parameters' types when it is parsed. With ``CQRS_PREPARED_STATEMENTS`` off (a pooler in
transaction mode without prepared-statement support, PgBouncer before 1.21) the same statements
are still bound server-side, only not prepared.
https://www.psycopg.org/psycopg3/docs/advanced/prepare.html
https://www.psycopg.org/psycopg3/docs/advanced/pipeline.html
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg
from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper

from .base import IDLE, restore_begin, take_begin

Rows = list[tuple[Any, ...]]
#: psycopg's ``prepare_threshold`` while a statement here runs: only ``prepare=True`` ones are prepared.
_EXPLICIT_ONLY = 2**31 - 1


def execute(connection: BaseDatabaseWrapper, sql: str, params: Sequence[Any], *, label: str = "") -> Rows:
    """Run one statement, prepared; its rows (``[]`` when it returns none)."""
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    began = time.monotonic() if connection.queries_logged else 0.0
    with connection.wrap_database_errors:
        conn = connection.connection
        cursor = psycopg.Cursor(conn)
        begin = _due_begin(conn)
        prepare = _enabled()
        # Django keeps psycopg's statement cache off (``prepare_threshold`` None): on, psycopg would
        # count and rotate every client-bound statement of the connection in it. It is on only here.
        opened = prepare and conn.prepare_threshold is None
        if opened:
            conn.prepare_threshold = _EXPLICIT_ONLY
        try:
            if begin is None:
                cursor.execute(sql, params, prepare=prepare)
            else:  # the transaction's BEGIN in the same round trip
                with conn.pipeline():
                    psycopg.Cursor(conn).execute(begin, prepare=False)
                    cursor.execute(sql, params, prepare=prepare)
            rows = cursor.fetchall() if cursor.description is not None else []
        except BaseException:
            restore_begin(conn, begin)
            raise
        finally:
            if opened:
                conn.prepare_threshold = None
    if began:
        connection.queries_log.append({"sql": f"/* {label} */ {sql}" if label else sql,
                                       "time": f"{time.monotonic() - began:.3f}"})
    return rows


def _enabled() -> bool:
    return bool(getattr(settings, "CQRS_PREPARED_STATEMENTS", True))


def _due_begin(conn: psycopg.Connection[Any]) -> str | None:
    """The ``BEGIN`` to send first: the pending one, unless a transaction is already open (then dropped)."""
    begin = take_begin(conn)
    return begin if conn.info.transaction_status == IDLE else None
