"""The event store on the configured backend: append, read, optimistic concurrency, append-only."""
from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from cqrs_core.bus import command_bus, load
from cqrs_core.commands import handler_for
from cqrs_core.errors import AppendOnlyViolation, ConcurrencyConflict, WrongExpectedVersion
from cqrs_core.models import StoredEvent
from cqrs_core.store import ANY_VERSION, append, head_position, read_all, read_stream, stream_version
from tests.bus_app.commands import Deposit
from tests.bus_app.events import AccountOpened
from tests.factories import DepositFactory, FundsDepositedFactory

pytestmark = pytest.mark.django_db


def _versions(stream: str) -> list[int]:
    return list(StoredEvent.objects.filter(stream_id=stream).order_by("stream_version")
                .values_list("stream_version", flat=True))


def test_append_numbers_a_new_stream_from_one() -> None:
    recorded = append("s-1", [FundsDepositedFactory(), FundsDepositedFactory()], expected_version=0)
    assert [r.stream_version for r in recorded] == [1, 2]
    assert recorded[0].position < recorded[1].position
    assert _versions("s-1") == [1, 2]


def test_read_stream_returns_the_events_in_stream_order() -> None:
    first, second = FundsDepositedFactory(), FundsDepositedFactory()
    append("s-1", [first], expected_version=0)
    append("other", [FundsDepositedFactory()], expected_version=0)
    append("s-1", [second], expected_version=1)
    assert [r.event for r in read_stream("s-1")] == [first, second]
    assert [r.event for r in read_stream("s-1", from_version=2)] == [second]
    assert stream_version("s-1") == 2
    assert stream_version("missing") == 0


def test_read_all_returns_every_stream_in_position_order() -> None:
    assert head_position() == 0
    a = append("a", [FundsDepositedFactory()], expected_version=0)
    b = append("b", [FundsDepositedFactory(), FundsDepositedFactory()], expected_version=0)
    everything = read_all()
    assert [r.position for r in everything] == [a[0].position, b[0].position, b[1].position]
    assert [r.stream_id for r in read_all(after_position=a[0].position)] == ["b", "b"]
    assert head_position() == b[1].position
    assert len(read_all(limit=2)) == 2


def test_a_wrong_expected_version_raises_and_writes_nothing() -> None:
    append("s-1", [FundsDepositedFactory()], expected_version=0)
    with pytest.raises(ConcurrencyConflict) as raised:
        append("s-1", [FundsDepositedFactory(), FundsDepositedFactory(), FundsDepositedFactory()], expected_version=0)
    assert raised.value.retryable
    assert _versions("s-1") == [1]


def test_strict_append_reports_the_clients_precondition() -> None:
    with pytest.raises(WrongExpectedVersion):
        append("s-1", [FundsDepositedFactory()], expected_version=3, strict=True)
    assert StoredEvent.objects.count() == 0


def test_a_multi_event_append_that_collides_midway_writes_none_of_its_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unique (stream, version) key, not the version check, is the arbiter: a stale read is caught."""
    import cqrs_core.store as store

    append("s-1", [FundsDepositedFactory()], expected_version=0)
    StoredEvent.objects.create(  # version 3 already taken by a writer outside append
        stream_id="s-1", stream_version=3, event_type="bus_app.FundsDeposited", data=FundsDepositedFactory().to_data(),
        event_id=uuid.uuid4(), recorded_at=timezone.now(),
    )
    monkeypatch.setattr(store, "_current_version_taking_xid", lambda stream_id: 1)
    with pytest.raises(ConcurrencyConflict):
        append("s-1", [FundsDepositedFactory() for _ in range(3)], expected_version=1)  # versions 2, 3, 4
    assert _versions("s-1") == [1, 3]


def test_any_version_appends_after_whatever_is_there() -> None:
    append("s-1", [FundsDepositedFactory(), FundsDepositedFactory()], expected_version=0)
    recorded = append("s-1", [FundsDepositedFactory()], expected_version=ANY_VERSION)
    assert recorded[0].stream_version == 3
    assert _versions("s-1") == [1, 2, 3]


def test_appending_nothing_writes_nothing() -> None:
    assert append("s-1", [], expected_version=5) == []
    assert StoredEvent.objects.count() == 0


# --- optimistic concurrency with real threads ------------------------------------------------
def _run_threads(count: int, target: Callable[[int], None], timeout: float = 60) -> None:
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:  # noqa: BLE001 - surfaced in the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a writer thread hung"
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_of_writers_racing_for_one_version_exactly_one_wins() -> None:
    writers = 8
    barrier = threading.Barrier(writers, timeout=30)
    outcomes: list[str] = []

    def write(index: int) -> None:
        version = stream_version("hot")
        barrier.wait()
        try:
            append("hot", [FundsDepositedFactory()], expected_version=version)
            outcomes.append("won")
        except ConcurrencyConflict:
            outcomes.append("conflict")

    _run_threads(writers, write)
    assert Counter(outcomes) == {"won": 1, "conflict": writers - 1}
    assert _versions("hot") == [1]


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_on_one_stream_leave_versions_without_holes() -> None:
    writers, target = 8, 40
    won: list[int] = []
    conflicts: list[int] = []
    start = threading.Barrier(writers, timeout=30)

    def write(index: int) -> None:
        start.wait()
        while (version := stream_version("hot")) < target:
            try:
                won.extend(r.stream_version for r in append("hot", [FundsDepositedFactory()], expected_version=version))
            except ConcurrencyConflict:
                conflicts.append(version)

    _run_threads(writers, write)
    versions = _versions("hot")
    assert versions == list(range(1, len(versions) + 1))
    assert sorted(won) == versions, "each stored version was won by exactly one writer"
    assert len(versions) >= target
    assert StoredEvent.objects.count() == len(won)


# --- append-only -------------------------------------------------------------------------------
@pytest.fixture
def stored() -> StoredEvent:
    append("s-1", [FundsDepositedFactory()], expected_version=0)
    return StoredEvent.objects.get()


def test_saving_a_loaded_event_is_refused(stored: StoredEvent) -> None:
    stored.stream_id = "changed"
    with pytest.raises(AppendOnlyViolation):
        stored.save()
    assert StoredEvent.objects.get().stream_id == "s-1"


def test_saving_a_new_instance_over_an_existing_position_is_refused(stored: StoredEvent) -> None:
    clone = StoredEvent(position=stored.position, stream_id="forged", stream_version=99, event_type=stored.event_type,
                        data={}, event_id=uuid.uuid4(), recorded_at=timezone.now())
    with pytest.raises((AppendOnlyViolation, DatabaseError)), transaction.atomic():
        clone.save()
    assert list(StoredEvent.objects.values_list("stream_id", "stream_version")) == [("s-1", 1)]


def test_deleting_an_event_is_refused(stored: StoredEvent) -> None:
    with pytest.raises(AppendOnlyViolation):
        stored.delete()
    assert StoredEvent.objects.count() == 1


def test_bulk_update_and_delete_are_refused(stored: StoredEvent) -> None:
    with pytest.raises(AppendOnlyViolation):
        StoredEvent.objects.update(stream_id="changed")
    with pytest.raises(AppendOnlyViolation):
        StoredEvent.objects.filter(pk=stored.pk).delete()
    with pytest.raises(AppendOnlyViolation), transaction.atomic():
        StoredEvent.objects.bulk_update([stored], ["stream_id"])
    assert list(StoredEvent.objects.values_list("stream_id", flat=True)) == ["s-1"]


def _refused_sql(sql: str, *, allow_truncate: bool = True) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        if not allow_truncate:
            cursor.execute("SET LOCAL ledgerline.allow_truncate = 'off'")
        cursor.execute(sql)


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the append-only trigger exists only on PostgreSQL")
@pytest.mark.parametrize("sql", ["UPDATE cqrs_event SET stream_id = 'changed'", "DELETE FROM cqrs_event"])
def test_the_database_refuses_raw_update_and_delete(stored: StoredEvent, sql: str) -> None:
    _refused_sql(sql)
    assert list(StoredEvent.objects.values_list("stream_id", flat=True)) == ["s-1"]


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the append-only trigger exists only on PostgreSQL")
def test_the_database_refuses_truncate(stored: StoredEvent) -> None:
    _refused_sql("TRUNCATE cqrs_event", allow_truncate=False)
    assert StoredEvent.objects.count() == 1


# --- upcasting ---------------------------------------------------------------------------------
def _store_v1_account_opened() -> uuid.UUID:
    """Insert an AccountOpened as schema v1 stored it (no currency); returns the account id."""
    account_id = uuid.uuid4()
    StoredEvent.objects.create(
        stream_id=f"bus_app.account-{account_id}", stream_version=1, event_type=AccountOpened.event_type,
        schema_version=1, data={"account_id": str(account_id), "owner_id": 1}, event_id=uuid.uuid4(),
        recorded_at=timezone.now(),
    )
    return account_id


def test_a_stored_v1_account_opened_reads_as_v2_with_usd() -> None:
    account_id = _store_v1_account_opened()
    event = read_stream(f"bus_app.account-{account_id}")[0].event
    assert event == AccountOpened(account_id=account_id, owner_id=1, currency="USD")
    state, version = load(handler_for(Deposit), f"bus_app.account-{account_id}")
    assert (state.currency, state.owner_id, version) == ("USD", 1, 1)


def test_the_bus_folds_a_v1_event_and_appends_after_it() -> None:
    account_id = _store_v1_account_opened()
    result = command_bus.dispatch(DepositFactory(account_id=account_id))
    assert (result.stream_version, result.data) == (2, {"balance": "100.00"})
    assert _versions(f"bus_app.account-{account_id}") == [1, 2]


def test_an_upserting_bulk_create_is_refused(stored: StoredEvent) -> None:
    forged = StoredEvent(stream_id="s-1", stream_version=1, event_type=stored.event_type, data={"forged": True},
                         event_id=uuid.uuid4(), recorded_at=timezone.now())
    with pytest.raises(AppendOnlyViolation), transaction.atomic():
        StoredEvent.objects.bulk_create([forged], update_conflicts=True, unique_fields=["stream_id", "stream_version"],
                                        update_fields=["data", "event_id"])
    assert StoredEvent.objects.get().data == stored.data
