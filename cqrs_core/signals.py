"""Celery signals that carry the request and correlation ids from whoever queues a task to the worker.

``before_task_publish`` copies the current ids into the message headers; ``task_prerun`` binds
them in the worker for the task's run and ``task_postrun`` unbinds them. So a task's log
records, and any command it dispatches without an explicit correlation id, share the ids of
the request that queued it. Eager tasks run in the caller's context and need none of this.
``worker_process_shutdown`` makes a stopping pool process's owed wake-up look (``wakeups.flush``).
https://docs.celeryq.dev/en/stable/userguide/signals.html#before-task-publish
"""
from __future__ import annotations

import contextvars
from typing import Any
from uuid import UUID

from celery import signals

from .bus import current_correlation_id
from .logs import current_request_id

REQUEST_HEADER = "ledgerline_request_id"
CORRELATION_HEADER = "ledgerline_correlation_id"

# task id -> tokens to reset after the run (prefork runs one task at a time; threads may run more).
_tokens: dict[str, list[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]]] = {}


@signals.before_task_publish.connect(weak=False, dispatch_uid="ledgerline.publish_context")
def add_context_headers(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Put the current ids into the outgoing message's headers (in place, as Celery expects)."""
    if headers is None:
        return
    correlation_id, request_id = current_correlation_id.get(), current_request_id.get()
    if correlation_id is not None:
        headers.setdefault(CORRELATION_HEADER, str(correlation_id))
    if request_id is not None:
        headers.setdefault(REQUEST_HEADER, request_id)


def _header(task: Any, name: str) -> str | None:
    """A custom header of the running task: Celery puts message headers on the request context."""
    request = getattr(task, "request", None)
    if request is None:
        return None
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value if isinstance(value, str) else None


@signals.task_prerun.connect(weak=False, dispatch_uid="ledgerline.bind_task_context")
def bind_task_context(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """Bind the ids the message carries; a message without them leaves the context as it is."""
    tokens: list[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]] = []
    correlation, request_id = _header(task, CORRELATION_HEADER), _header(task, REQUEST_HEADER)
    if correlation is not None:
        try:
            tokens.append((current_correlation_id, current_correlation_id.set(UUID(correlation))))
        except ValueError:
            pass  # not ours to trust: the task runs with a fresh correlation id
    if request_id is not None:
        tokens.append((current_request_id, current_request_id.set(request_id)))
    if tokens and task_id is not None:
        _tokens[task_id] = tokens


@signals.task_postrun.connect(weak=False, dispatch_uid="ledgerline.unbind_task_context")
def unbind_task_context(task_id: str | None = None, **_: Any) -> None:
    """Restore the context the worker had before the task."""
    for var, token in reversed(_tokens.pop(task_id or "", [])):
        try:
            var.reset(token)
        except ValueError:  # set in another context (a thread pool): nothing of ours to undo here
            var.set(None)


@signals.worker_process_shutdown.connect(weak=False, dispatch_uid="ledgerline.flush_wakeups")
def flush_wakeups(**_: Any) -> None:
    """A pool process that stops makes the wake-up look its sagas' commits still owe (it may skip atexit)."""
    from .wakeups import flush

    flush()
