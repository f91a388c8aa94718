"""Workers keep their database connection across tasks, checked around each task as Django checks around a request."""
from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from celery import signals
from celery.fixups.django import DjangoWorkerFixup
from django.conf import settings
from django.db import connection

from config.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


class _Task:
    """The part of a task the handlers read: its request's ``is_eager``."""

    def __init__(self, *, eager: bool) -> None:
        self.request = SimpleNamespace(is_eager=eager, headers={})


def _task(*, eager: bool) -> Any:
    return _Task(eager=eager)


def _run_task(*, eager: bool = False) -> None:
    """What a worker sends around a task (the fixup's own handlers are connected only in a worker)."""
    signals.task_prerun.send(sender=_task(eager=eager))
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    signals.task_postrun.send(sender=_task(eager=eager))


def test_celerys_fixup_reuses_connections_as_configured() -> None:
    assert settings.CELERY_DB_REUSE_MAX > 0
    assert DjangoWorkerFixup(app).db_reuse_max == settings.CELERY_DB_REUSE_MAX


def test_a_usable_connection_is_kept_from_task_to_task() -> None:
    connection.ensure_connection()
    connection.close_at = time.monotonic() + 60  # CONN_MAX_AGE = 60, as the services stack has it
    kept = connection.connection
    _run_task()
    _run_task()
    assert connection.connection is kept


def test_an_expired_connection_is_closed_after_its_task() -> None:
    connection.ensure_connection()
    connection.close_at = time.monotonic() - 1  # past CONN_MAX_AGE
    signals.task_postrun.send(sender=_task(eager=False))
    assert connection.connection is None


def test_a_connection_left_outside_autocommit_is_closed_before_the_next_task() -> None:
    connection.ensure_connection()
    connection.set_autocommit(False)
    signals.task_prerun.send(sender=_task(eager=False))
    assert connection.connection is None
    assert connection.get_autocommit()  # a new connection, in autocommit


def test_an_eager_task_leaves_the_callers_connection_alone() -> None:
    connection.ensure_connection()
    kept = connection.connection
    connection.close_at = time.monotonic() - 1  # would be closed by a worker
    _run_task(eager=True)
    assert connection.connection is kept
    connection.close_at = None


def test_with_reuse_off_the_handlers_leave_closing_to_celery(settings: Any) -> None:
    connection.ensure_connection()
    connection.close_at = time.monotonic() - 1
    app.conf.db_reuse_max = 0
    try:
        signals.task_postrun.send(sender=_task(eager=False))
        assert connection.connection is not None
    finally:
        app.conf.db_reuse_max = settings.CELERY_DB_REUSE_MAX
        connection.close_at = None
