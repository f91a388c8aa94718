"""The fast command path keeps its promises: a cached state never outvotes the store, a conflict rolls back whole."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

import cqrs_core.bus as bus
from cqrs_core import command_sql
from cqrs_core.bus import command_bus, load, state_cache
from cqrs_core.commands import Actor, handler_for
from cqrs_core.errors import ConcurrencyConflict
from cqrs_core.events import EventMetadata, RecordedEvent
from cqrs_core.models import CommandRecord
from cqrs_core.store import NewEvent, append, read_stream
from tests.bus_app.commands import Deposit, InsufficientFunds, OpenAccount, Withdraw
from tests.bus_app.events import FundsDeposited
from tests.bus_app.state import ACCOUNT, Account

# Real commits: the cache is filled after commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

SPEC = handler_for(Deposit)


def _stream(account_id: uuid.UUID) -> str:
    return f"bus_app.account-{account_id}"


def _open(actor: Actor, deposits: int = 0) -> uuid.UUID:
    account_id = uuid.uuid4()
    command_bus.dispatch(OpenAccount(account_id=account_id), actor=actor)
    for _ in range(deposits):
        command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("10.00")), actor=actor)
    return account_id


def _poison(stream: str, version: int, balance: str) -> None:
    """Put a wrong state in the cache at ``version``, under an event id the store does not have."""
    fake = RecordedEvent(position=0, stream_id=stream, stream_version=version, event_type="x", schema_version=1,
                         data={}, metadata=EventMetadata(event_id=uuid.uuid4()), recorded_at=None)
    state, _ = load(SPEC, stream)
    state_cache.put(SPEC, stream, Account(**{**vars(state), "balance": Decimal(balance)}), fake)


@pytest.fixture(autouse=True)
def empty_state_cache() -> None:
    state_cache.discard()


def test_a_command_after_a_commit_starts_from_the_cached_state(actor: Actor, monkeypatch: pytest.MonkeyPatch) -> None:
    account_id = _open(actor, deposits=3)
    monkeypatch.setattr(bus, "load", lambda *a, **k: pytest.fail("folded from the snapshot, not the cached state"))
    result = command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("10.00")), actor=actor)
    cached = state_cache.load(SPEC, _stream(account_id))
    monkeypatch.undo()
    assert result.stream_version == 5
    assert cached == load(SPEC, _stream(account_id))
    assert cached[0].balance == Decimal("40.00")


def test_events_written_by_another_process_are_folded_onto_the_cached_state(actor: Actor) -> None:
    account_id = _open(actor, deposits=1)
    # Another process (or a writer outside the bus) appends; this process's cache knows nothing of it.
    append(_stream(account_id), [FundsDeposited(account_id=account_id, amount=Decimal("5.00"))], 2)
    result = command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("1.00")), actor=actor)
    assert result.stream_version == 4
    assert state_cache.load(SPEC, _stream(account_id)) == load(SPEC, _stream(account_id))
    assert load(SPEC, _stream(account_id))[0].balance == Decimal("16.00")


def test_a_cached_state_whose_event_is_not_in_the_store_is_ignored(actor: Actor) -> None:
    account_id = _open(actor, deposits=1)
    stream = _stream(account_id)
    _poison(stream, 2, "1000000")  # as if the event it followed had been rolled back or the table reset
    with pytest.raises(InsufficientFunds):
        command_bus.dispatch(Withdraw(account_id=account_id, amount=Decimal("500")), actor=actor)
    assert len(read_stream(stream)) == 2
    assert state_cache.load(SPEC, stream)[0].balance == Decimal("10.00")


def test_a_rolled_back_command_leaves_the_cache_at_the_committed_state(actor: Actor) -> None:
    account_id = _open(actor, deposits=1)
    command_id = uuid.uuid4()
    with pytest.raises(RuntimeError), transaction.atomic():
        command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("7.00")), actor=actor, command_id=command_id)
        raise RuntimeError("the caller's transaction fails after the command")
    state, version = state_cache.load(SPEC, _stream(account_id))
    assert (state.balance, version) == (Decimal("10.00"), 2)
    assert not CommandRecord.objects.filter(pk=command_id).exists()


def test_the_cache_keeps_only_the_most_recently_used_streams(actor: Actor, monkeypatch: pytest.MonkeyPatch) -> None:
    with override_settings(CQRS_STATE_CACHE_SIZE=2):
        first, second, third = (_open(actor) for _ in range(3))
        monkeypatch.setattr(bus, "load", lambda *a, **k: ("folded", 0))
        assert state_cache.load(SPEC, _stream(first)) == ("folded", 0)
        assert state_cache.load(SPEC, _stream(second))[1] == 1
        assert state_cache.load(SPEC, _stream(third))[1] == 1


@override_settings(CQRS_ONE_STATEMENT_COMMANDS=False)  # the locked path's own retry (the other is tested below)
def test_a_version_conflict_at_append_rolls_back_whole_and_retries(actor: Actor,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The bus appends without savepoints: a stale read must still leave no trace and be decided again."""
    account_id = _open(actor, deposits=2)
    stream, real_load, real_lock_and_load, loads = _stream(account_id), state_cache.load, state_cache.lock_and_load, []

    def stale_first(spec, name, *, loaded=None):
        # The first read misses the stream's last commit, as a read racing another writer would.
        loads.append(1)
        if len(loads) == 1:
            return ACCOUNT.fold(read_stream(name)[:-1]), len(read_stream(name)) - 1
        return loaded if loaded is not None else real_load(spec, name)

    monkeypatch.setattr(state_cache, "load", stale_first)  # SQLite's path
    # PostgreSQL's path: the lock and the handled check as usual, then the stale state.
    monkeypatch.setattr(state_cache, "lock_and_load", lambda spec, name, command_id: stale_first(
        spec, name, loaded=real_lock_and_load(spec, name, command_id)))
    result = command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("1.00")), actor=actor)
    monkeypatch.undo()
    assert (len(loads), result.stream_version) == (2, 4)
    assert [e.stream_version for e in read_stream(stream)] == [1, 2, 3, 4]
    assert load(SPEC, stream)[0].balance == Decimal("21.00")
    assert CommandRecord.objects.filter(pk=result.command_id).count() == 1


def test_append_without_savepoint_leaves_a_conflicted_transaction_for_rollback(actor: Actor) -> None:
    account_id = _open(actor)
    with transaction.atomic():
        with pytest.raises(ConcurrencyConflict):
            append(_stream(account_id), [FundsDeposited(account_id=account_id, amount=Decimal(1))], 7,
                   savepoint=False)
        assert connection.needs_rollback
        transaction.set_rollback(False)  # only to leave the block quietly: nothing was written
    assert len(read_stream(_stream(account_id))) == 1


def test_the_cached_state_after_many_commands_equals_a_fold_of_the_stored_stream(actor: Actor) -> None:
    account_id = _open(actor)
    for amount in ("0.10", "2.5", "0.000000000000000001", "3"):
        for _ in range(3):  # 13 events: across two snapshots (every 5 in the test settings)
            command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal(amount)), actor=actor)
    command_bus.dispatch(Withdraw(account_id=account_id, amount=Decimal("1.000000000000000003")), actor=actor)
    stream = _stream(account_id)
    full = ACCOUNT.fold(read_stream(stream))
    assert state_cache.load(SPEC, stream) == load(SPEC, stream) == (full, 14)
    assert full.balance == Decimal("15.8")


# --- the one-statement path (PostgreSQL): decided on the kept state, written only if the stream has not moved ---
on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's")


class _Paths:
    """Counts how each command was written: in one statement (and how that ended) or on the locked path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.one_statement: list[str] = []
        self.locked = 0
        real_one, real_locked = bus.command_sql.append_if_current, bus.command_sql.append_and_record

        def one(*args, **kwargs):
            try:
                recorded = real_one(*args, **kwargs)
            except Exception as exc:
                self.one_statement.append(type(exc).__name__)
                raise
            self.one_statement.append("appended")
            return recorded

        def locked(*args, **kwargs):
            self.locked += 1
            return real_locked(*args, **kwargs)

        monkeypatch.setattr(bus.command_sql, "append_if_current", one)
        monkeypatch.setattr(bus.command_sql, "append_and_record", locked)


@on_postgres
def test_a_command_on_a_kept_state_is_one_statement_and_nothing_else(actor: Actor,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    account_id = _open(actor, deposits=1)
    monkeypatch.setattr(command_bus, "after_commit_hooks", [])  # eager projections would add their own queries
    with CaptureQueriesContext(connection) as queries:
        result = command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("2.50")), actor=actor)
    assert [q["sql"].split("*/")[0] for q in queries.captured_queries] == ["/* append_command "]
    assert "BEGIN" not in queries.captured_queries[0]["sql"] and not connection.in_atomic_block
    assert result.stream_version == 3 and result.position == read_stream(_stream(account_id))[-1].position
    assert CommandRecord.objects.get(pk=result.command_id).result == {
        "position": result.position, "stream_version": 3, "data": {"balance": "12.50"}}
    assert state_cache.load(SPEC, _stream(account_id)) == load(SPEC, _stream(account_id))


@on_postgres
@override_settings(CQRS_SNAPSHOT_EVERY=100)  # a command that takes a snapshot goes the locked path: none here
def test_a_stream_moved_by_another_writer_is_decided_again_under_the_lock(actor: Actor,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    account_id = _open(actor, deposits=1)
    stream = _stream(account_id)
    paths = _Paths(monkeypatch)
    # Another process deposits 100; this process's kept state still says 10, which would refuse 50.
    append(stream, [FundsDeposited(account_id=account_id, amount=Decimal("100.00"))], 2)
    result = command_bus.dispatch(Withdraw(account_id=account_id, amount=Decimal("50.00")), actor=actor)
    assert (paths.one_statement, paths.locked) == ([], 1)  # refused on the kept state: decided again, locked
    assert result.stream_version == 4 and load(SPEC, stream)[0].balance == Decimal("60.00")

    # Now one that the kept state accepts, after another outside write: the statement finds it stale.
    append(stream, [FundsDeposited(account_id=account_id, amount=Decimal("1.00"))], 4)
    command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("2.00")), actor=actor)
    assert (paths.one_statement, paths.locked) == (["Stale"], 2)
    assert [e.stream_version for e in read_stream(stream)] == [1, 2, 3, 4, 5, 6]
    assert load(SPEC, stream)[0].balance == Decimal("63.00")

    # Seen written by others: the next command reads under the lock; finding the stream unmoved, the
    # one after is back to one statement.
    command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("3.00")), actor=actor)
    command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("4.00")), actor=actor)
    assert (paths.one_statement, paths.locked) == (["Stale", "appended"], 3)
    assert state_cache.load(SPEC, stream) == load(SPEC, stream)
    assert load(SPEC, stream)[0].balance == Decimal("70.00")


@on_postgres
def test_with_autocommit_off_a_command_stays_in_the_callers_transaction(actor: Actor,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    account_id = _open(actor, deposits=1)
    paths = _Paths(monkeypatch)
    transaction.set_autocommit(False)
    try:
        result = command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("1.00")), actor=actor)
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    assert (paths.one_statement, paths.locked) == ([], 1)
    assert len(read_stream(_stream(account_id))) == 2 and result.stream_version == 3
    assert not CommandRecord.objects.filter(pk=result.command_id).exists()


@on_postgres
def test_a_stale_statement_writes_nothing(actor: Actor) -> None:
    account_id = _open(actor, deposits=1)
    stream = _stream(account_id)
    first, second = read_stream(stream)
    event = NewEvent(event=FundsDeposited(account_id=account_id, amount=Decimal(1)),
                     metadata=EventMetadata(event_id=uuid.uuid4()))
    record = {"command_id": uuid.uuid4(), "command_type": "x", "fingerprint": "f", "actor_id": 1, "stream_version": 3,
              "data": {}}
    for version, tail in ((1, first.metadata.event_id), (2, uuid.uuid4()), (3, second.metadata.event_id)):
        with pytest.raises(command_sql.Stale):
            command_sql.append_if_current(stream, [event], version, tail, now=second.recorded_at, record=record,
                                          recorded_at=second.recorded_at)
    assert len(read_stream(stream)) == 2 and not CommandRecord.objects.filter(pk=record["command_id"]).exists()


@on_postgres
def test_a_repeated_command_id_on_the_one_statement_path_gets_the_first_outcome(actor: Actor,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    account_id = _open(actor, deposits=1)
    paths, command_id = _Paths(monkeypatch), uuid.uuid4()
    first = command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("5")), actor=actor, command_id=command_id)
    again = command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("5")), actor=actor, command_id=command_id)
    assert paths.one_statement == ["appended", "Handled"] and paths.locked == 0
    assert (again.replayed, again.position, again.stream_version) == (True, first.position, first.stream_version)
    assert len(read_stream(_stream(account_id))) == 3


def _next_draw_logs_nothing() -> None:
    """Make the next position drawn not WAL-log the sequence: such a ``nextval`` assigns an xid itself.

    PostgreSQL logs a sequence every 32 values and on the first draw after a checkpoint; a draw
    that logs takes an xid first, which would let a path that forgot its own pass this test.
    """
    with connection.cursor() as cursor:
        for _ in range(2):
            cursor.execute("SELECT nextval(pg_get_serial_sequence('cqrs_event', 'position'))")
            cursor.execute("SELECT log_cnt FROM cqrs_event_position_seq")
            if cursor.fetchone()[0] > 0:
                return


@on_postgres
def test_every_append_path_has_its_xid_before_it_draws_a_position(actor: Actor, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gap-free reader's premise (``cqrs_core.store``): a row is inserted only once its transaction has an xid.

    A BEFORE INSERT trigger runs after the row's position is drawn and before the row is written
    (which would assign an xid itself): it refuses a row whose transaction has none yet. A plain
    INSERT in autocommit is refused (the check can fail); the bus's paths and ``append`` are not.
    """
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE FUNCTION pg_temp.xid_first() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF pg_current_xact_id_if_assigned() IS NULL THEN
                    RAISE EXCEPTION 'position % drawn before the transaction had an xid', NEW.position;
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER xid_first BEFORE INSERT ON cqrs_event FOR EACH ROW EXECUTE FUNCTION pg_temp.xid_first();
        """)
    paths = _Paths(monkeypatch)
    try:
        _next_draw_logs_nothing()
        with pytest.raises(DatabaseError, match="drawn before the transaction had an xid"):
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO cqrs_event (stream_id, stream_version, event_type, schema_version, data,"
                               " event_id, metadata, recorded_at) VALUES ('naive', 1, 'x', 1, '{}', %s, '{}', now())",
                               [uuid.uuid4()])
        account_id = _open(actor)
        state_cache.discard()  # nothing kept: the locked path
        _next_draw_logs_nothing()
        command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal(1)), actor=actor)
        _next_draw_logs_nothing()  # kept after that commit: one statement
        command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal(1)), actor=actor)
        _next_draw_logs_nothing()
        with transaction.atomic():
            append(_stream(account_id), [FundsDeposited(account_id=account_id, amount=Decimal(1))], 3)
        assert (paths.locked, paths.one_statement) == (2, ["appended"])  # OpenAccount and the first deposit
        assert [e.stream_version for e in read_stream(_stream(account_id))] == [1, 2, 3, 4]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS xid_first ON cqrs_event")
