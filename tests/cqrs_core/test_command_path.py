"""The fast command path keeps its promises: a cached state never outvotes the store, a conflict rolls back whole."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import override_settings

import cqrs_core.bus as bus
from cqrs_core.bus import command_bus, load, state_cache
from cqrs_core.commands import Actor, handler_for
from cqrs_core.errors import ConcurrencyConflict
from cqrs_core.events import EventMetadata, RecordedEvent
from cqrs_core.models import CommandRecord
from cqrs_core.store import append, read_stream
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
