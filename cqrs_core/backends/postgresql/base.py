"""Django's PostgreSQL backend, less two round trips: the idle health check and a transaction's own BEGIN.

**Health check.** With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before the first query of
every request on a reused connection: one more round trip per request, as much as the request's
own token lookup. A dead connection is not quiet, though: a server that restarts, shuts down
(fast or immediate) or whose backend is killed sends its termination message and/or closes
the socket, so the socket turns readable. Here the check looks at the socket first (a
non-blocking ``select``): nothing pending on an idle, open connection means usable; anything
else (pending data, EOF, a transaction left open, a broken or closed connection) gets
Django's full ``SELECT 1`` check as before. The check after an error is unchanged (always
``SELECT 1``). A silently lost network path is caught by neither check in time: ``SELECT 1``
would only hang until the TCP timeout.
https://docs.djangoproject.com/en/5.2/ref/databases/#database-health-checks

**BEGIN with the first statement.** Outside autocommit psycopg sends ``BEGIN`` on its own and
waits for the answer before the transaction's first statement: a round trip per transaction
(per command, per projection batch) that carries nothing. Here psycopg stays in autocommit and
the backend puts the same ``BEGIN`` (with the connection's isolation level, read-only and
deferrable settings, as psycopg writes it) in front of the first statement's text, in one
simple-protocol message; the cursor then steps past the ``BEGIN``'s result, so callers see
exactly the results they asked for. Same transaction, same moment it starts (right before the
first statement, as psycopg does), one message less. Where the text cannot carry it (a
``sql.Composable``, ``executemany``, ``COPY``, a named cursor, pipeline mode) the ``BEGIN`` is
sent alone first, as psycopg would. ``COMMIT`` and ``ROLLBACK`` are psycopg's own (they look at
the server's transaction status, not at the autocommit flag), and a block that ran no
statement sends neither.
https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-MULTI-STATEMENT
"""
from __future__ import annotations

import select
from typing import Any

from django.db.backends.postgresql.base import Cursor as DjangoCursor
from django.db.backends.postgresql.base import Database, is_psycopg3
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper

try:
    IDLE = Database.pq.TransactionStatus.IDLE
except AttributeError:  # psycopg2: Django's check, always
    IDLE = None

#: Attribute of the psycopg connection holding the ``BEGIN`` its next statement must start with.
_PENDING = "_ledgerline_pending_begin"


def begin_statement(conn: Any) -> str:
    """The ``BEGIN`` psycopg itself would send on ``conn`` (``_get_tx_start_command``, from public settings)."""
    parts = ["BEGIN"]
    if conn.isolation_level is not None:
        parts.append("ISOLATION LEVEL " + Database.IsolationLevel(conn.isolation_level).name.replace("_", " "))
    if conn.read_only is not None:
        parts.append("READ ONLY" if conn.read_only else "READ WRITE")
    if conn.deferrable is not None:
        parts.append("DEFERRABLE" if conn.deferrable else "NOT DEFERRABLE")
    return " ".join(parts)


def take_begin(conn: Any) -> str | None:
    """The pending ``BEGIN`` of ``conn``, now no longer pending (None when there is none).

    For statements sent around Django's cursors (``cqrs_core.command_sql``): whoever takes it
    sends it first, or puts it back if nothing reached the server.
    """
    begin = getattr(conn, _PENDING, None)
    if begin is not None:
        setattr(conn, _PENDING, None)
    return begin


def restore_begin(conn: Any, begin: str | None) -> None:
    """After a failure: a taken ``BEGIN`` that never reached the server (still idle) is due again."""
    if begin is not None and conn.info.transaction_status == IDLE:
        setattr(conn, _PENDING, begin)


if is_psycopg3:

    class BeginCursor(DjangoCursor):  # type: ignore[misc,valid-type]
        """Django's client-side-binding cursor that sends a pending ``BEGIN`` in its first statement's message."""

        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            conn = self.connection
            begin = take_begin(conn)
            if begin is None or conn.info.transaction_status != IDLE:  # none due, or one already open
                return super().execute(query, params, **kwargs)
            if not isinstance(query, str) or kwargs or conn._pipeline is not None:
                super().execute(begin)
                return super().execute(query, params, **kwargs)
            try:
                super().execute(f"{begin}; {query}", params)
            except BaseException:
                restore_begin(conn, begin)  # nothing reached the server: still to begin
                raise
            self.nextset()  # past the BEGIN's result, onto the caller's first
            return self

        def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
            self.flush_begin()
            return super().executemany(query, params_seq, **kwargs)  # type: ignore[no-any-return]

        def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
            self.flush_begin()
            return super().copy(statement, params, **kwargs)

        def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            self.flush_begin()
            return super().stream(query, params, **kwargs)

        def flush_begin(self) -> None:
            """Send a pending ``BEGIN`` on its own (where the statement's text cannot carry it)."""
            begin = take_begin(self.connection)
            if begin is not None and self.connection.info.transaction_status == IDLE:
                super().execute(begin)


class DatabaseWrapper(PostgresDatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        if is_psycopg3 and params.get("cursor_factory") is DjangoCursor:
            params["cursor_factory"] = BeginCursor
        return params  # type: ignore[no-any-return]

    def _defers_begin(self) -> bool:
        """Whether this connection sends a transaction's BEGIN with its first statement (psycopg 3, no pool)."""
        conn = self.connection
        return is_psycopg3 and not self.pool and conn is not None and conn.cursor_factory is BeginCursor

    def _set_autocommit(self, autocommit: bool) -> None:
        if not self._defers_begin():
            return super()._set_autocommit(autocommit)  # type: ignore[no-any-return]
        conn = self.connection
        with self.wrap_database_errors:
            if conn.info.transaction_status != IDLE:
                # What psycopg answers to a change of autocommit inside a transaction.
                raise Database.ProgrammingError(
                    f"can't change autocommit now: connection in transaction status {conn.info.transaction_status.name}")
            if not conn.autocommit:
                conn.autocommit = True
            setattr(conn, _PENDING, None if autocommit else begin_statement(conn))

    def _commit(self) -> None:
        super()._commit()
        self._rearm()

    def _rollback(self) -> None:
        super()._rollback()
        self._rearm()

    def _rearm(self) -> None:
        """Outside autocommit the next statement after COMMIT or ROLLBACK begins again (psycopg's behaviour)."""
        if not self.autocommit and self._defers_begin():
            setattr(self.connection, _PENDING, begin_statement(self.connection))

    def create_cursor(self, name: str | None = None) -> Any:
        if name is None or not self._defers_begin():
            return super().create_cursor(name)
        conn = self.connection
        if getattr(conn, _PENDING, None) is not None:  # a DECLARE goes through psycopg's own path
            with conn.cursor() as cursor:
                cursor.flush_begin()
        cursor = super().create_cursor(name)
        # Django holds a named cursor past the transaction when psycopg is in autocommit; psycopg
        # always is here, so hold it only where Django means to: outside a transaction.
        cursor._withhold = conn.info.transaction_status == IDLE
        return cursor

    def close_if_health_check_failed(self) -> None:
        if (self.connection is not None and self.health_check_enabled and not self.health_check_done
                and not self.pool and self._quiet_and_idle()):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _quiet_and_idle(self) -> bool:
        """Open, idle, and nothing from the server waiting on the socket (no round trip)."""
        conn = self.connection
        if IDLE is None:
            return False
        try:
            if conn.closed or conn.broken or conn.info.transaction_status != IDLE:
                return False
            poller = select.poll()
            poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
            return not poller.poll(0)  # any event (data, EOF, hang-up, error) is not quiet
        except (OSError, ValueError, Database.Error):
            return False
