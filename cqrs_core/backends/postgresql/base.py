"""Django's PostgreSQL backend with a health check that costs no round trip while the connection is quiet.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before the first query of every request
on a reused connection: one more round trip per request, as much as the request's own
token lookup. A dead connection is not quiet, though: a server that restarts, shuts down
(fast or immediate) or whose backend is killed sends its termination message and/or closes
the socket, so the socket turns readable. Here the check looks at the socket first (a
non-blocking ``select``): nothing pending on an idle, open connection means usable; anything
else (pending data, EOF, a transaction left open, a broken or closed connection) gets
Django's full ``SELECT 1`` check as before. The check after an error is unchanged (always
``SELECT 1``). A silently lost network path is caught by neither check in time: ``SELECT 1``
would only hang until the TCP timeout.
https://docs.djangoproject.com/en/5.2/ref/databases/#database-health-checks
"""
from __future__ import annotations

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper
from django.db.backends.postgresql.base import Database

try:
    _IDLE = Database.pq.TransactionStatus.IDLE
except AttributeError:  # psycopg2: Django's check, always
    _IDLE = None


class DatabaseWrapper(PostgresDatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if (self.connection is not None and self.health_check_enabled and not self.health_check_done
                and not self.pool and self._quiet_and_idle()):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _quiet_and_idle(self) -> bool:
        """Open, idle, and nothing from the server waiting on the socket (no round trip)."""
        conn = self.connection
        if _IDLE is None:
            return False
        try:
            if conn.closed or conn.broken or conn.info.transaction_status != _IDLE:
                return False
            poller = select.poll()
            poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
            return not poller.poll(0)  # any event (data, EOF, hang-up, error) is not quiet
        except (OSError, ValueError, Database.Error):
            return False
