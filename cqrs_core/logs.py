"""Log records that say which request, command and correlation they belong to, optionally as JSON.

* ``RequestContextFilter`` (on the handler, so records of every logger pass it) stamps each
  record with ``request_id``, ``correlation_id`` and ``command_id`` from context variables, set
  by ``RequestContextMiddleware`` for a request, by the Celery signals for a task and by the
  command bus for a command. A value given in ``extra=`` wins.
* ``JsonFormatter`` writes one JSON object a line (``LOG_FORMAT=json``): time, level, logger,
  message, the three ids, any ``extra=`` fields and the traceback. A dozen lines of our own
  instead of python-json-logger: no dependency for what ``json.dumps`` does, and the field
  names and the handling of the context ids stay in one place we control.

This module imports nothing of the app at load time: ``LOGGING`` builds it before apps are ready.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable
from typing import Any
from uuid import UUID

#: The id of the HTTP request (or of the request that queued the running task).
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
#: The id of the command the bus is handling.
current_command_id: contextvars.ContextVar[UUID | None] = contextvars.ContextVar("command_id", default=None)

CONTEXT_FIELDS = ("request_id", "correlation_id", "command_id")
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def current_correlation_id() -> UUID | None:
    """The bus's correlation id; None when the bus was never imported (then nothing has set it)."""
    # Read through sys.modules: importing the bus here would load models before apps are ready.
    bus = sys.modules.get("cqrs_core.bus")
    return None if bus is None else bus.current_correlation_id.get()


def context_ids() -> dict[str, str | None]:
    """The request, correlation and command ids of the current context, as strings or None."""
    values = (current_request_id.get(), current_correlation_id(), current_command_id.get())
    return {name: None if value is None else str(value) for name, value in zip(CONTEXT_FIELDS, values)}


class RequestContextFilter(logging.Filter):
    """Adds the context ids to every record (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context_ids().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record; values JSON cannot encode are written with ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({name: getattr(record, name, None) for name in CONTEXT_FIELDS})
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and k not in entry})
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def bind_command_id(env: Any, call_next: Callable[[Any], Any]) -> Any:
    """Command bus middleware (outermost): the command id is in the context while the command runs."""
    token = current_command_id.set(env.command_id)
    try:
        return call_next(env)
    finally:
        current_command_id.reset(token)
