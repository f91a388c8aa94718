"""Coalesced wake-ups: a burst publishes once per projection, and a skipped wake-up never strands an event."""
from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection, transaction

import cqrs_core.wakeups as wakeups
from config.celery import app as celery_app
from cqrs_core.models import ProjectionState
from cqrs_core.projections import _dirty_key, run_projection
from cqrs_core.store import head_position
from cqrs_core.tasks import run_projection_task
from cqrs_core.wakeups import _pending_key, wake_again
from tests.bus_app.models import LedgerEntry
from tests.projections.conftest import BALANCES, LEDGER, deposit, open_account

# Real commits: wake-ups are sent after commit.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[Counter]:
    """Wake-ups go to a (recorded) broker instead of running inline; no mark is left from before.

    Each command looks at the marks itself, right after its commit (``CQRS_WAKEUP_INTERVAL=0``):
    these tests are about what a look decides; the ``checks`` tests below, about when it is made.
    """
    settings.CQRS_WAKEUP_INTERVAL = 0
    sent: Counter = Counter()
    monkeypatch.setattr(run_projection_task, "apply_async", lambda args, **kwargs: sent.update(args))
    monkeypatch.setattr(wakeups, "FRESH_SECONDS", 60.0)  # the test's pace must not decide
    cache.delete_many([_dirty_key(BALANCES), _dirty_key(LEDGER), _pending_key(BALANCES), _pending_key(LEDGER)])
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield sent
    finally:
        celery_app.conf.task_always_eager = before


def _position(name: str) -> int:
    return ProjectionState.objects.filter(name=name).values_list("position", flat=True).first() or 0


def test_a_burst_of_commands_publishes_one_wakeup_per_projection(published: Counter) -> None:
    account = open_account()
    for amount in ("1", "2", "3", "4"):
        deposit(account, amount)
    assert published == {BALANCES: 1, LEDGER: 1}


def test_a_skipped_wakeup_strands_no_event(published: Counter) -> None:
    account = open_account()  # wakes BALANCES, whose message the "worker" below stands for
    deposit(account, "1")     # wakes LEDGER
    deposit(account, "2")     # both marks are fresh: nothing published
    assert published == {BALANCES: 1, LEDGER: 1}
    for name in (BALANCES, LEDGER):  # what the worker does for the two messages
        run_projection_task.run(name)
    head = head_position()
    assert (_position(BALANCES), _position(LEDGER)) == (head, head)
    assert sorted(LedgerEntry.objects.values_list("amount", flat=True)) == [1, 2]
    deposit(account, "3")  # the runners took the marks and their messages: the next command wakes them again
    assert published == {BALANCES: 2, LEDGER: 2}


def test_a_mark_that_a_runner_never_took_is_published_again_once_old(published: Counter) -> None:
    account = open_account()
    deposit(account, "1")
    cache.set(_dirty_key(LEDGER), time.time() - 120, timeout=60)  # its message was lost, say,
    cache.set(_dirty_key(BALANCES), 1, timeout=60)                # or written by the old per-command hook,
    cache.delete_many([_pending_key(LEDGER), _pending_key(BALANCES)])  # and PENDING_SECONDS have passed
    deposit(account, "2")
    assert published == {BALANCES: 2, LEDGER: 2}


def test_an_old_mark_whose_wakeup_still_waits_in_the_queue_publishes_nothing_more(published: Counter) -> None:
    """A wake-up that outwaits FRESH_SECONDS in a busy queue is not doubled: its run reads these commits too."""
    account = open_account()
    deposit(account, "1")
    assert published == {BALANCES: 1, LEDGER: 1}
    cache.set_many({_dirty_key(LEDGER): time.time() - 120, _dirty_key(BALANCES): time.time() - 120}, timeout=60)

    deposit(account, "2")

    assert published == {BALANCES: 1, LEDGER: 1}
    assert isinstance(cache.get(_dirty_key(LEDGER)), float) and time.time() - cache.get(_dirty_key(LEDGER)) < 60, \
        "the mark is fresh again, so a runner already past its last read reads once more"
    for name in (BALANCES, LEDGER):  # the two waiting messages
        run_projection_task.run(name)
    assert sorted(LedgerEntry.objects.values_list("amount", flat=True)) == [1, 2]
    assert _position(LEDGER) == head_position()


def test_a_runner_that_used_up_its_slice_while_another_wakeup_waits_queues_nothing(published: Counter) -> None:
    """Two runners of one projection (two messages) become one line: the second ends at its slice."""
    account = open_account()
    deposit(account, "1")
    published.clear()
    wake_again(LEDGER)  # the first runner's slice is up, and the commands' wake-up is still waiting
    assert published == {}
    run_projection_task.run(LEDGER)  # that wake-up runs (and catches up): its message no longer waits
    assert published == {} and cache.get(_pending_key(LEDGER)) is None
    wake_again(LEDGER)
    assert published == {LEDGER: 1}
    assert cache.get(_pending_key(LEDGER)) is not None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: SQLite has one writer at a time")
def test_a_runner_that_took_a_mark_reads_after_the_runner_holding_the_row(
    published: Counter, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The mark stood for a commit the holder may have read before: whoever takes it must read after it."""
    import cqrs_core.projections as projections

    account = open_account()
    deposit(account, "1")
    run_projection(LEDGER)
    published.clear()
    cache.set(_dirty_key(LEDGER), time.time(), timeout=60)  # a runner's wake-up, say, still fresh
    locked, held_for = threading.Event(), 0.2

    def hold_the_row() -> None:  # another runner's last (empty) batch, read before deposit "2"
        try:
            with transaction.atomic():
                ProjectionState.objects.select_for_update().get(name=LEDGER)
                locked.set()
                time.sleep(held_for)
        finally:
            connection.close()

    real_take, taken = projections._take_dirty, []

    def take(name: str) -> bool:
        if name != LEDGER or taken:
            return real_take(name)
        deposit(account, "2")  # commits, finds the mark fresh: publishes nothing
        taken.append(real_take(name))
        threading.Thread(target=hold_the_row).start()
        assert locked.wait(5)
        return taken[0]

    monkeypatch.setattr(projections, "_take_dirty", take)
    run_projection(LEDGER)

    assert taken == [True] and LEDGER not in published
    assert sorted(LedgerEntry.objects.values_list("amount", flat=True)) == [1, 2]
    assert _position(LEDGER) == head_position()


def test_a_cache_that_cannot_answer_publishes_every_time(published: Counter, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get_many", down)
    monkeypatch.setattr(cache, "set_many", down)
    monkeypatch.setattr(cache, "add", down)
    monkeypatch.setattr(cache, "delete", down)
    account = open_account()
    deposit(account, "1")
    deposit(account, "2")
    assert published == {BALANCES: 3, LEDGER: 2}


def test_in_eager_mode_every_command_runs_its_projections() -> None:
    account = open_account()
    for amount in ("1", "2", "3"):
        deposit(account, amount)
        assert _position(LEDGER) == head_position()
    assert LedgerEntry.objects.count() == 3


# --- a worker's run is bounded in time -----------------------------------------------------------
def test_a_run_past_its_time_slice_queues_its_own_wakeup_and_strands_no_event(
    published: Counter, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under steady load a run never ends by itself: past its slice it hands over to a fresh wake-up."""
    import cqrs_core.projections as projections

    account = open_account()
    for amount in range(1, 61):  # the ledger reads 50 positions a batch: two batches to go
        deposit(account, str(amount))
    monkeypatch.setattr(projections, "SLICE_SECONDS", 0.0)
    head, runs, deadline = head_position(), 0, time.monotonic() + 30
    while _position(LEDGER) < head and time.monotonic() < deadline:
        published.clear()
        run_projection_task(LEDGER)
        runs += 1
        assert published == {LEDGER: 1}, "a run that was behind woke the projection again before it returned"

    assert runs >= 2, "one batch (50 positions) per run"
    assert _position(LEDGER) == head
    assert LedgerEntry.objects.count() == 60


def test_a_run_caught_up_with_no_dirty_mark_at_the_end_of_its_slice_is_done(published: Counter) -> None:
    account = open_account()
    deposit(account, "1")
    run_projection(LEDGER)
    cache.delete(_dirty_key(LEDGER))

    report = run_projection(LEDGER, slice_seconds=0.0)

    assert report.batches == 1 and not report.yielded


# --- When the look is made: one thread per process (``wakeups._Checks``) -------------------------------


class _Gated(wakeups._Checks):
    """The checking thread, paused between looks until the test opens the gate (not for a time)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def _pause(self) -> None:
        assert self.gate.wait(10), "the test never opened the gate"
        self.gate.clear()


@pytest.fixture
def looks(monkeypatch: pytest.MonkeyPatch, settings: Any, published: Counter) -> Iterator[list[list[str]]]:
    """Each look the checking thread makes (the projections it looked at), on a fresh ``_Gated`` thread."""
    settings.CQRS_WAKEUP_INTERVAL = 0.01  # any value > 0: the thread looks; ``_Gated`` decides the pace
    made: list[list[str]] = []
    real_check = wakeups.check

    def check(names: Any) -> None:
        names = sorted(names)
        try:
            real_check(names)
        finally:  # counted once done: what it published is in ``published`` by then
            made.append(names)

    checks = _Gated()
    monkeypatch.setattr(wakeups, "check", check)
    monkeypatch.setattr(wakeups, "_checks", checks)
    try:
        yield made
    finally:
        checks.flush()
        checks.gate.set()


def _until(condition: Any) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the checking thread did not look"
        time.sleep(0.005)


def test_a_quiet_process_looks_at_once_and_a_busy_one_once_for_the_commits_meanwhile(
    looks: list[list[str]], published: Counter,
) -> None:
    account = open_account()  # touches BALANCES (and OWNERS, if async)
    _until(lambda: len(looks) == 1)
    assert BALANCES in looks[0] and published[BALANCES] == 1
    for amount in ("1", "2", "3"):
        deposit(account, amount)  # the thread pauses (gate shut): these wait for one look
    time.sleep(0.05)
    assert len(looks) == 1
    wakeups._checks.gate.set()
    _until(lambda: len(looks) == 2)
    assert looks[1] == sorted({BALANCES, LEDGER})
    assert (published[BALANCES], published[LEDGER]) == (1, 1), "the mark the first look wrote is still fresh"


def test_flush_makes_the_owed_look_in_the_caller(looks: list[list[str]], published: Counter) -> None:
    account = open_account()
    _until(lambda: len(looks) == 1)
    deposit(account, "1")
    assert LEDGER not in published  # owed: the thread pauses
    wakeups.flush()
    assert len(looks) == 2 and published[LEDGER] == 1
    run_projection_task.run(LEDGER)  # what the worker does with it
    assert sorted(LedgerEntry.objects.values_list("amount", flat=True)) == [1]


def test_a_look_that_fails_does_not_stop_the_thread(
    looks: list[list[str]], published: Counter, monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_marks, failures = wakeups._marks, []

    def marks(names: Any) -> Any:
        if not failures:
            failures.append(names)
            raise RuntimeError("the cache went away mid-look")
        return real_marks(names)

    monkeypatch.setattr(wakeups, "_marks", marks)
    account = open_account()
    _until(lambda: len(looks) == 1)
    assert failures and not published
    deposit(account, "1")
    wakeups._checks.gate.set()
    _until(lambda: len(looks) == 2)
    assert published[LEDGER] == 1


def test_the_celery_pool_process_shutdown_signal_makes_the_owed_look(
    looks: list[list[str]], published: Counter,
) -> None:
    from celery import signals

    account = open_account()
    _until(lambda: len(looks) == 1)
    deposit(account, "1")
    signals.worker_process_shutdown.send(sender=None, pid=0, exitcode=0)
    assert published[LEDGER] == 1


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the death is the point
def test_a_thread_that_died_is_started_again(looks: list[list[str]], published: Counter) -> None:
    account = open_account()
    _until(lambda: len(looks) == 1)
    dead = wakeups._checks._thread
    assert dead is not None
    wakeups._checks._pause = lambda: sys.exit()  # a BaseException: the loop does not catch it
    wakeups._checks.gate.set()  # out of the first pause; then one more round (nothing owed) into this one
    wakeups._checks._due.set()
    dead.join(10)
    assert not dead.is_alive()
    del wakeups._checks._pause  # the next thread pauses at the gate again
    deposit(account, "1")
    _until(lambda: len(looks) == 2)
    assert wakeups._checks._thread is not dead and published[LEDGER] == 1


def test_a_forked_child_starts_with_its_own_lock_thread_and_names() -> None:
    checks = wakeups._checks
    checks._lock.acquire()  # as a parent's thread might hold it at the moment of the fork
    try:
        pid = os.fork()
        if pid == 0:  # the child: exit 0 only if it can take the lock and owes nothing
            ok = checks._lock.acquire(timeout=1) and checks._thread is None and not checks._names
            os._exit(0 if ok else 1)
    finally:
        checks._lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
