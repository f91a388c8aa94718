"""Prepared statements on the hot paths: same answers and transactions as Django's cursors, planned once."""
from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from cqrs_core import command_sql
from cqrs_core.backends.postgresql import prepared
from cqrs_core.store import append, stream_version
from tests.bus_app.events import FundsDeposited

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's prepared statements"),
    pytest.mark.django_db(transaction=True),
]

_SELECT = "SELECT %s::bigint + 1"


def _prepared_texts() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_is_prepared_once_and_answers_each_time() -> None:
    assert [prepared.execute(connection, _SELECT, [n]) for n in (1, 41)] == [[(2,)], [(42,)]]
    assert sum("$1::bigint + 1" in text for text in _prepared_texts()) == 1


def test_django_cursors_on_the_connection_stay_unprepared() -> None:
    prepared.execute(connection, _SELECT, [1])
    assert connection.connection.prepare_threshold is None  # psycopg's statement cache is off again
    with connection.cursor() as cursor:
        for _ in range(10):
            cursor.execute("SELECT %s::int * 2", [3])
    assert not any("* 2" in text for text in _prepared_texts())


def test_with_prepared_statements_off_nothing_is_prepared(settings) -> None:
    settings.CQRS_PREPARED_STATEMENTS = False
    assert prepared.execute(connection, _SELECT, [1]) == [(2,)]
    assert not any("$1::bigint + 1" in text for text in _prepared_texts())


def test_the_pending_begin_travels_with_the_statement_and_a_rollback_undoes_it() -> None:
    stream = f"prepared-{uuid.uuid4()}"
    insert = ("INSERT INTO cqrs_command (command_id, command_type, fingerprint, actor_id, stream_id, result, recorded_at) "
              "VALUES (%s::uuid, 'x', 'f', NULL, %s::text, '{}'::jsonb, now())")
    with pytest.raises(RuntimeError), transaction.atomic():
        prepared.execute(connection, insert, [uuid.uuid4(), stream])  # first statement of the block
        assert connection.connection.info.transaction_status != connection.connection.info.transaction_status.IDLE
        raise RuntimeError("roll back")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM cqrs_command WHERE stream_id = %s", [stream])
        assert cursor.fetchone() == (0,)


def test_database_errors_arrive_as_django_errors_and_the_connection_goes_on() -> None:
    command_id = uuid.uuid4()
    insert = ("INSERT INTO cqrs_command (command_id, command_type, fingerprint, actor_id, stream_id, result, recorded_at) "
              "VALUES (%s::uuid, 'x', 'f', NULL, 's', '{}'::jsonb, now())")
    prepared.execute(connection, insert, [command_id])
    with pytest.raises(IntegrityError), transaction.atomic():
        prepared.execute(connection, insert, [command_id])
    assert prepared.execute(connection, _SELECT, [2]) == [(3,)]


def test_statements_are_logged_where_django_logs_queries() -> None:
    with CaptureQueriesContext(connection) as queries:
        prepared.execute(connection, _SELECT, [1], label="probe")
    assert [q["sql"] for q in queries.captured_queries] == [f"/* probe */ {_SELECT}"]


def test_lock_and_read_sees_the_commit_it_waited_for() -> None:
    """The lock is taken before the read's snapshot: a waiter reads the events of the holder it waited for."""
    stream = f"prepared-{uuid.uuid4()}"
    account = uuid.uuid4()
    append(stream, [FundsDeposited(account_id=account, amount=Decimal(1))], 0)
    holding, seen = threading.Event(), {}

    def holder() -> None:
        try:
            with transaction.atomic():
                command_sql.lock_and_read(stream, uuid.uuid4(), 1)
                holding.set()
                time.sleep(0.3)
                append(stream, [FundsDeposited(account_id=account, amount=Decimal(2))], 1)
        finally:
            connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    holding.wait(5)
    with transaction.atomic():
        handled, events = command_sql.lock_and_read(stream, uuid.uuid4(), 1)  # waits for the holder's commit
    thread.join(5)
    assert not handled
    assert [e.stream_version for e in events] == [1, 2]
    assert stream_version(stream) == 2


def test_lock_and_read_says_when_a_command_id_is_handled() -> None:
    stream, command_id = f"prepared-{uuid.uuid4()}", uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO cqrs_command (command_id, command_type, fingerprint, actor_id, stream_id, result, "
                       "recorded_at) VALUES (%s, 'x', 'f', NULL, %s, '{}', now())", [command_id, stream])
    with transaction.atomic():
        assert command_sql.lock_and_read(stream, command_id, None) == (True, [])
    with transaction.atomic():
        assert command_sql.lock_and_read(stream, uuid.uuid4(), None) == (False, [])
