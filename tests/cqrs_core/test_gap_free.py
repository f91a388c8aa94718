"""Gap-free tailing of the global order under concurrent writers that commit out of position order.

PostgreSQL only: there positions are drawn before commit by parallel transactions. (On SQLite one
writer at a time draws positions under the write lock, so the naive reader cannot miss anything.)
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.db import connection, transaction

from cqrs_core.errors import ConcurrencyConflict
from cqrs_core.models import StoredEvent
from cqrs_core.store import Cursor, append, head_position, read_all, read_committed, stream_version
from tests.factories import FundsDepositedFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL: SQLite serialises writers, so commits never land out of order"),
    pytest.mark.django_db(transaction=True),
]

WRITERS = 16
STREAMS = 32  # writers pick streams at random and sometimes collide: rollbacks leave permanent holes
LOAD_SECONDS = 3.0
DRAIN_SECONDS = 30.0


@dataclass
class Tally:
    seen: list[int] = field(default_factory=list)
    committed_appends: int = 0
    conflicts: int = 0


def _writer(stop: threading.Event, tally: Tally, lock: threading.Lock) -> None:
    streams = [f"gap-{i}" for i in range(STREAMS)]
    try:
        while not stop.is_set():
            stream = random.choice(streams)
            try:
                with transaction.atomic():
                    events = [FundsDepositedFactory() for _ in range(random.randint(1, 3))]
                    append(stream, events, expected_version=stream_version(stream))
                    # Hold the drawn positions uncommitted for a while, so commits land out of order.
                    time.sleep(random.uniform(0, 0.005))
                with lock:
                    tally.committed_appends += 1
            except ConcurrencyConflict:
                with lock:
                    tally.conflicts += 1
    finally:
        connection.close()


def _tail(read_after: Callable[[], list[int]], writers_done: threading.Event, final_head: list[int],
          caught_up: Callable[[], int], tally: Tally, errors: list[BaseException]) -> None:
    """Poll until the writers are done and the reader has reached the head they left."""
    try:
        deadline = None
        while True:
            positions = read_after()
            tally.seen.extend(positions)
            if writers_done.is_set():
                deadline = deadline or time.monotonic() + DRAIN_SECONDS
                if caught_up() >= final_head[0] or time.monotonic() > deadline:
                    return
            if not positions:
                time.sleep(0.001)  # an idle poll, not synchronisation
    except BaseException as exc:  # noqa: BLE001 - reported by the main thread
        errors.append(exc)
    finally:
        connection.close()


def _gap_free_reader() -> tuple[Callable[[], list[int]], Callable[[], int]]:
    cursor = Cursor()

    def read() -> list[int]:
        nonlocal cursor
        batch = read_committed(cursor, limit=500)
        cursor = batch.cursor
        return [e.position for e in batch.events]

    return read, lambda: cursor.position


def _naive_reader() -> tuple[Callable[[], list[int]], Callable[[], int]]:
    checkpoint = 0

    def read() -> list[int]:
        nonlocal checkpoint
        events = read_all(after_position=checkpoint, limit=500)
        if events:
            checkpoint = events[-1].position
        return [e.position for e in events]

    return read, lambda: checkpoint


def _run_under_load(make_reader: Callable[[], tuple[Callable[[], list[int]], Callable[[], int]]]) -> dict[str, int]:
    stop, writers_done, lock = threading.Event(), threading.Event(), threading.Lock()
    tally, errors, final_head = Tally(), [], [0]
    read, caught_up = make_reader()
    reader = threading.Thread(target=_tail, args=(read, writers_done, final_head, caught_up, tally, errors))
    writers = [threading.Thread(target=_writer, args=(stop, tally, lock)) for _ in range(WRITERS)]
    reader.start()
    for thread in writers:
        thread.start()
    time.sleep(LOAD_SECONDS)  # how long the load runs, not synchronisation
    stop.set()
    for thread in writers:
        thread.join(30)
    final_head[0] = head_position()
    writers_done.set()
    reader.join(DRAIN_SECONDS + 10)
    assert not reader.is_alive() and not any(t.is_alive() for t in writers), "a thread hung"
    assert not errors, errors
    stored = set(StoredEvent.objects.values_list("position", flat=True))
    figures = {
        "written": len(stored), "appends": tally.committed_appends, "conflicts": tally.conflicts,
        "holes": max(stored) - min(stored) + 1 - len(stored), "missed": len(stored - set(tally.seen)),
        "duplicated": len(tally.seen) - len(set(tally.seen)), "unknown": len(set(tally.seen) - stored),
    }
    print(f"\n{make_reader.__name__}: {figures}")
    return figures


def test_read_committed_misses_nothing_under_out_of_order_commits() -> None:
    figures = _run_under_load(_gap_free_reader)
    assert figures["written"] > 300, "the load was too light to prove anything"
    assert figures["holes"] > 0, "no append rolled back, so permanent holes went untested"
    assert (figures["missed"], figures["duplicated"], figures["unknown"]) == (0, 0, 0), figures


def test_the_naive_reader_misses_events_under_the_same_load() -> None:
    """Proves the harness can see the bug read_committed exists to avoid."""
    figures = _run_under_load(_naive_reader)
    assert figures["written"] > 300
    assert figures["missed"] > 0, figures
    assert figures["duplicated"] == 0


def _wait_until_no_transaction_older_than(horizon: int, timeout: float = 20) -> None:
    """Other sessions on a shared cluster may hold old xids for a while; wait for them, bounded."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            if cursor.fetchone()[0] >= horizon:
                return
            assert time.monotonic() < deadline, f"a transaction older than xid {horizon} is still running"
            time.sleep(0.01)  # polls a condition of other sessions: nothing to wait on but the database


def test_a_rolled_back_append_does_not_stall_the_reader() -> None:
    first = append("hole", [FundsDepositedFactory()], expected_version=0)[0]
    with pytest.raises(RuntimeError), transaction.atomic():
        append("hole", [FundsDepositedFactory()], expected_version=1)
        raise RuntimeError("roll back: the position it drew stays a permanent hole")
    last = append("hole", [FundsDepositedFactory()], expected_version=1)[0]
    assert last.position > first.position + 1, "the rolled-back append left no hole"

    batch = read_committed(Cursor(first.position - 1))  # earlier tests' positions were truncated away
    assert [e.position for e in batch.events] == [first.position] and batch.waiting_on_gap
    cursor, seen = batch.cursor, [first.position]
    _wait_until_no_transaction_older_than(cursor.gap_horizon)
    for _ in range(2):
        batch = read_committed(cursor)
        cursor = batch.cursor
        seen.extend(e.position for e in batch.events)
    assert cursor.position == last.position, f"still held at {cursor}"
    assert seen == [first.position, last.position]


def test_a_reader_waits_for_an_append_still_in_flight() -> None:
    """A hole held by an open transaction is not skipped: its event is delivered once committed."""
    drew, release = threading.Event(), threading.Event()
    in_flight: list[int] = []

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                in_flight.extend(r.position for r in append(f"slow-{uuid.uuid4()}", [FundsDepositedFactory()], 0))
                drew.set()
                release.wait(10)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert drew.wait(10)
    after = append("fast", [FundsDepositedFactory()], expected_version=0)[0]
    cursor = Cursor(in_flight[0] - 1)
    for _ in range(3):
        batch = read_committed(cursor)
        cursor = batch.cursor
        assert batch.events == [] and batch.waiting_on_gap
    release.set()
    writer.join(10)
    delivered: list[int] = []
    for _ in range(3):
        batch = read_committed(cursor)
        cursor = batch.cursor
        delivered.extend(e.position for e in batch.events)
    assert delivered == [in_flight[0], after.position]


def test_a_hole_held_by_a_younger_transaction_is_not_taken_for_permanent() -> None:
    """The writer with the newer xid draws the lower position and commits last; nothing is skipped meanwhile.

    Writers take their xid before they draw positions, but xid order and drawing order can differ:
    here ``elder`` takes its xid first, ``younger`` takes its own and draws, ``elder`` draws above it
    and commits. A snapshot's ``xmax`` is only one past the latest *completed* xid, so it can sit
    at or below ``younger``'s xid; a horizon taken from it was passed while ``younger`` still ran,
    and its event was skipped for good (seen under CPU load in the racing-runners test).
    """
    import psycopg

    from cqrs_core.store import NewEvent
    from cqrs_core.events import EventMetadata

    dsn = connection.get_connection_params()
    kwargs = {k: v for k, v in dsn.items() if k in ("dbname", "user", "host", "port", "password")}
    base = append(f"base-{uuid.uuid4()}", [FundsDepositedFactory()], expected_version=0)[0]
    sql = ("INSERT INTO cqrs_event (stream_id, stream_version, event_type, schema_version, data, event_id, metadata, "
           "recorded_at) VALUES (%s, 1, %s, 1, %s, %s, '{}', now()) RETURNING position")
    event = FundsDepositedFactory()
    with psycopg.connect(**kwargs) as elder, psycopg.connect(**kwargs) as younger:
        elder_xid = int(elder.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        younger_xid = int(younger.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        assert younger_xid > elder_xid
        args = lambda: [f"race-{uuid.uuid4()}", event.event_type, psycopg.types.json.Json(event.to_data()), uuid.uuid4()]
        held = younger.execute(sql, args()).fetchone()[0]
        above = elder.execute(sql, args()).fetchone()[0]
        assert base.position < held < above
        elder.commit()

        cursor, delivered = Cursor(base.position - 1), []
        for _ in range(4):  # with younger still open: the hole at `held` must hold every read
            batch = read_committed(cursor)
            cursor = batch.cursor
            delivered.extend(e.position for e in batch.events)
            time.sleep(0.02)
        assert delivered == [base.position] and cursor.position == base.position, (delivered, cursor)
        younger.commit()

    for _ in range(3):
        batch = read_committed(cursor)
        cursor = batch.cursor
        delivered.extend(e.position for e in batch.events)
    assert delivered == [base.position, held, above]
