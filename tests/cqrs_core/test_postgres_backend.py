"""The PostgreSQL backend sends a transaction's BEGIN with its first statement: same transactions, one message less."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def commands() -> Iterator[list[bytes]]:
    """Every command psycopg sends on its own (BEGIN, COMMIT, ROLLBACK, ...), as it sends them."""
    connection.ensure_connection()
    sent: list[bytes] = []
    conn_class = type(connection.connection)
    original = conn_class._exec_command

    def recording(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(command if isinstance(command, bytes) else str(command).encode())
        return original(self, command, *args, **kwargs)

    with mock.patch.object(conn_class, "_exec_command", recording):
        yield sent


def _xact_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text")
        return int(cursor.fetchone()[0])


def _status() -> str:
    return str(connection.connection.info.transaction_status.name)


def _usernames(prefix: str) -> set[str]:
    return set(get_user_model().objects.filter(username__startswith=prefix).values_list("username", flat=True))


def test_the_first_statement_of_a_block_carries_its_begin(commands: list[bytes]) -> None:
    with transaction.atomic():
        assert _status() == "IDLE"  # nothing sent yet, as with psycopg's own lazy BEGIN
        first = _xact_id()
        assert _status() == "INTRANS"
        assert _xact_id() == first
    assert _xact_id() != first
    assert not [c for c in commands if c.startswith(b"BEGIN")]
    assert commands.count(b"COMMIT") == 1


def test_a_block_that_ran_nothing_sends_nothing(commands: list[bytes]) -> None:
    with transaction.atomic():
        pass
    assert commands == []


def test_a_rolled_back_block_leaves_nothing_and_the_connection_goes_on() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        get_user_model().objects.create(username="begin-rollback")
        raise RuntimeError("undo")
    assert _usernames("begin-") == set()
    with pytest.raises(DatabaseError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")  # fails in the message that began the block
    assert _status() == "IDLE"
    get_user_model().objects.create(username="begin-after")
    assert _usernames("begin-") == {"begin-after"}


def test_a_statement_that_never_reached_the_server_leaves_the_begin_for_the_next() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        with connection.cursor() as cursor, pytest.raises(Exception):
            cursor.execute("SELECT %s, %s", [1])  # refused by the client: too few parameters
        assert _status() == "IDLE"
        get_user_model().objects.create(username="begin-pending")
        assert _status() == "INTRANS"
        raise RuntimeError("undo")
    assert _usernames("begin-") == set()


def test_the_connections_isolation_level_is_kept() -> None:
    from psycopg import IsolationLevel

    connection.ensure_connection()
    raw = connection.connection
    raw.isolation_level = IsolationLevel.REPEATABLE_READ
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SHOW transaction_isolation")
            assert cursor.fetchone()[0] == "repeatable read"
    finally:
        raw.isolation_level = None
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SHOW transaction_isolation")
        assert cursor.fetchone()[0] == "read committed"


def test_a_named_cursor_first_in_a_block_is_inside_it_and_not_held() -> None:
    users = get_user_model().objects
    users.create(username="begin-a")
    with pytest.raises(RuntimeError), transaction.atomic():
        assert [u.username for u in users.filter(username__startswith="begin-").iterator(chunk_size=1)] == ["begin-a"]
        assert _status() == "INTRANS"
        with connection.cursor() as cursor:
            cursor.execute("SELECT is_holdable FROM pg_cursors WHERE name LIKE '_django_curs_%%'")
            assert all(not holdable for (holdable,) in cursor.fetchall())
        users.create(username="begin-b")
        assert sorted(u.username for u in users.filter(username__startswith="begin-").iterator(chunk_size=1)) == \
            ["begin-a", "begin-b"]
        raise RuntimeError("undo")
    assert _usernames("begin-") == {"begin-a"}
    # Outside a block a named cursor still works (held, as Django makes it in autocommit).
    assert [u.username for u in users.filter(username__startswith="begin-").iterator(chunk_size=1)] == ["begin-a"]


def test_executemany_in_a_block_is_inside_it() -> None:
    table = get_user_model()._meta.db_table
    with pytest.raises(RuntimeError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} (username, password, is_superuser, first_name, last_name, email, is_staff,"
                " is_active, date_joined) VALUES (%s, '', false, '', '', '', false, true, now())",
                [["begin-m1"], ["begin-m2"]])
        assert _usernames("begin-") == {"begin-m1", "begin-m2"}
        raise RuntimeError("undo")
    assert _usernames("begin-") == set()


def test_with_autocommit_off_each_commit_is_followed_by_a_new_transaction() -> None:
    users = get_user_model().objects
    transaction.set_autocommit(False)
    try:
        users.create(username="begin-kept")
        transaction.commit()
        users.create(username="begin-dropped")
        assert _status() == "INTRANS"
        transaction.rollback()
        assert _status() == "IDLE"
    finally:
        transaction.set_autocommit(True)
    assert _usernames("begin-") == {"begin-kept"}

