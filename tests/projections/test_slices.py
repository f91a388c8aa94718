"""A worker's runner hands the worker over after its time slice, and its task queues it again."""
from __future__ import annotations

import dataclasses

import pytest

from cqrs_core import projections as proj
from cqrs_core import tasks
from cqrs_core.models import ProjectionState
from cqrs_core.projections import run_projection
from cqrs_core.store import head_position
from cqrs_core.wakeups import wake_again

from .conftest import LEDGER, deposit, ledger_counts_per_position, open_account


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger projection reads two positions per batch, so a history takes several batches."""
    monkeypatch.setitem(proj._PROJECTIONS, LEDGER, dataclasses.replace(proj.get_projection(LEDGER), batch_size=2))


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_a_runner_out_of_time_stops_between_batches_and_says_so(no_wakeups: None, small_batches: None) -> None:
    account = open_account()
    for amount in ("1", "2", "3", "4", "5"):
        deposit(account, amount)

    first = run_projection(LEDGER, slice_seconds=0)  # the slice is over after the first batch

    assert first.yielded and first.batches == 1
    assert ProjectionState.objects.get(name=LEDGER).position < head_position()
    rest = run_projection(LEDGER)  # no slice: to the end
    assert not rest.yielded
    assert ProjectionState.objects.get(name=LEDGER).position == head_position()
    assert set(ledger_counts_per_position().values()) == {1}, "every money event once, none skipped"


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_a_runner_with_time_left_runs_to_the_end(no_wakeups: None, small_batches: None) -> None:
    account = open_account()
    for amount in ("1", "2", "3", "4", "5"):
        deposit(account, amount)

    report = run_projection(LEDGER, slice_seconds=60)

    assert not report.yielded and report.batches > 2
    assert ProjectionState.objects.get(name=LEDGER).position == head_position()


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_the_task_of_a_yielded_runner_wakes_it_again(monkeypatch: pytest.MonkeyPatch, small_batches: None) -> None:
    woken: list[str] = []
    monkeypatch.setattr(tasks.run_projection_task, "apply_async", lambda args, **kw: woken.append(args[0]))
    account = open_account()
    for amount in ("1", "2", "3"):
        deposit(account, amount)
    woken.clear()  # the commands' own wake-ups
    monkeypatch.setattr(proj, "SLICE_SECONDS", 0)
    eager = tasks.run_projection_task.app.conf.task_always_eager
    tasks.run_projection_task.app.conf.task_always_eager = False  # as on a worker: slices apply
    try:
        tasks.run_projection_task.run(LEDGER)
    finally:
        tasks.run_projection_task.app.conf.task_always_eager = eager

    assert woken == [LEDGER]
    assert ProjectionState.objects.get(name=LEDGER).position < head_position()


def test_waking_again_marks_the_projection_dirty_before_it_publishes(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.cache import cache

    seen: list[object] = []
    key = proj._dirty_key(LEDGER)
    cache.delete(key)
    monkeypatch.setattr(tasks.run_projection_task, "apply_async", lambda args, **kw: seen.append(cache.get(key)))

    wake_again(LEDGER)

    assert len(seen) == 1 and isinstance(seen[0], float), "the mark was there when the wake-up went out"


def test_a_yielded_runners_wake_up_joins_the_line_of_the_other_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same priority as command wake-ups and saga steps: served in order, so moving projections take turns."""
    from django.core.cache import cache

    from cqrs_core.commands import DEFAULT_PRIORITY, ResourceRequirements
    from cqrs_core.wakeups import _mark_and_publish, _pending_key

    sent: list[dict[str, object]] = []
    monkeypatch.setattr(tasks.run_projection_task, "apply_async", lambda args, **kw: sent.append(kw))
    eager = tasks.run_projection_task.app.conf.task_always_eager
    tasks.run_projection_task.app.conf.task_always_eager = False  # as on a worker
    try:
        wake_again(LEDGER)
        cache.delete(_pending_key(LEDGER))  # that wake-up's run started
        _mark_and_publish([LEDGER], 0.0, eager=False)  # a command's wake-up
    finally:
        tasks.run_projection_task.app.conf.task_always_eager = eager

    assert sent == [{"priority": DEFAULT_PRIORITY}] * 2
    assert ResourceRequirements().priority == DEFAULT_PRIORITY  # saga steps and queued commands


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_a_sliced_runner_pauses_only_after_a_batch_short_of_its_limit(monkeypatch: pytest.MonkeyPatch, no_wakeups: None,
                                                                      small_batches: None) -> None:
    account = open_account()
    for amount in ("1", "2", "3", "4"):
        deposit(account, amount)  # positions 1-5, read two at a time: 2, 2, 1 (short: pause), 0 (caught up)
    sleeps: list[float] = []
    monkeypatch.setattr(proj.time, "sleep", sleeps.append)

    report = run_projection(LEDGER, slice_seconds=60)

    assert ProjectionState.objects.get(name=LEDGER).position == head_position()
    assert sleeps == [proj.TRICKLE_PAUSE_SECONDS]
    assert report.batches >= 4  # and one more read if a wake-up mark was left meanwhile
