"""Waking async projections after a command commits: one message per projection per burst, not per command.

The event table is the outbox (DESIGN promise 5): a wake-up only says "look", and the beat sweep
turns a lost one into a delay. Each async projection has a dirty mark in the cache
(``projections._dirty_key``): a runner that has caught up deletes it and, when it was there,
reads once more before it stops. So a mark that exists when a command looks, after its commit,
is a promise that some runner will read again later, and so read that command's events. Who
writes the mark publishes a wake-up right after; whoever finds a fresh mark publishes nothing.
A burst of commands thus costs one cache read per command (all its projections in one
``get_many``) and one broker message per projection while the worker is busy, instead of a
cache write and a broker message per projection per command.

A mark older than ``FRESH_SECONDS`` counts as absent and is written again. Whether a message is
published then depends on a second key, the projection's *pending* key (``_pending_key``): whoever
publishes a wake-up first adds it (``SET NX``, ``PENDING_SECONDS``), and the task deletes it when it
starts, before its first read. While it is there a message is still waiting in the queue, and its
run will start after, so read every commit made before: nothing more is published. Without it,
duplicates multiplied: a runner that used up its slice queues itself again (``wake_again``), so two
messages for one projection (a command's, sent when a queued wake-up outwaited ``FRESH_SECONDS``)
became two runners taking turns on the lock in each other's pauses, each re-queuing itself, for
good; measured at 200 commands/s, ``portfolio.portfolios`` ended up holding both worker processes
and the other projections waited about a second between runs (``trading.trades`` lag p99 1.1-1.3 s
in two runs of three). With the key a second chain ends at its next slice. A message that was lost
(a purged queue, a broker restart) holds the key at most ``PENDING_SECONDS``; the beat sweep
publishes without it. A cache that cannot answer publishes every time: a duplicate wake-up only
finds the runner busy. In eager mode (embedded, tests) the "message" is the run itself, so every
command runs its projections as before.

The look itself is made by one thread per process (``_Checks``), not by the command: at once
when the process has been quiet, then at most once per ``CQRS_WAKEUP_INTERVAL`` seconds (10 ms),
for all the projections that the commands committed meanwhile touched. A look that starts after
several commits keeps the promise for all of them, so under load one cache round trip covers the
process's commands of that interval instead of one each (a quarter of a command's client CPU in
the benchmark's loop); a wake-up waits at most that interval longer. A process that ends makes
the look still owed before it goes (``atexit``, and Celery's ``worker_process_shutdown`` for pool
processes); one killed outright loses it, as it would lose a look it had not made yet before:
the beat sweep wakes the projection. ``CQRS_WAKEUP_INTERVAL=0`` makes each command look itself,
right after its commit. The thread's messages carry no command's ids (they stand for several).
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.core.cache import cache

from .commands import DEFAULT_PRIORITY
from .events import RecordedEvent
from .projections import ASYNC, _dirty_key, projections

logger = logging.getLogger("ledgerline.projections")

#: Age after which a dirty mark no longer stands for a pending wake-up.
FRESH_SECONDS = 1.0
#: Lifetime of a mark in the cache; longer than a runner's batch, so a busy runner still sees it.
MARK_SECONDS = 60
#: Longest a published wake-up stands for "a message is waiting" (``_pending_key``): a lost one
#: delays its projection's next wake-up by at most this long.
PENDING_SECONDS = 5


def wake_projections(recorded: Sequence[RecordedEvent]) -> None:
    """Bus hook, after commit: wake each async projection of these events that no pending wake-up covers.

    Eager (embedded, tests): the projections run here. Otherwise the look at their marks is this
    process's checking thread's, within ``CQRS_WAKEUP_INTERVAL`` (``_Checks``), or made here when
    that is 0.
    """
    from .tasks import run_projection_task

    types = {r.event_type for r in recorded}
    names = [p.name for p in projections() if p.mode == ASYNC and p.event_types & types]
    if not names:
        return
    if run_projection_task.app.conf.task_always_eager:
        _mark_and_publish(names, time.time(), eager=True)
        return
    if _interval() > 0:
        _checks.add(names)
    else:
        check(names)


def _interval() -> float:
    return float(getattr(settings, "CQRS_WAKEUP_INTERVAL", 0.0))


def check(names: Iterable[str]) -> None:
    """Look at the projections' marks (after the commits this look covers) and wake those without a fresh one."""
    now = time.time()
    names = list(names)
    marks = _marks(names)
    stale = [n for n in names if not _fresh(marks.get(_dirty_key(n)), now)]
    if stale:
        _mark_and_publish(stale, now, eager=False)


class _Checks:
    """This process's looks, made by one thread: at once after a quiet spell, then at most one per interval.

    A command adds its projections' names and sets ``_due``; the thread takes every name added so
    far (under the lock, so a name added meanwhile waits for the next round, never gets lost) and
    looks once for all of them, after all of their commits. Then it sleeps ``CQRS_WAKEUP_INTERVAL``,
    so the commands of a busy process share a look. After a fork the child starts afresh (its own
    thread, lock and names: a lock held by a parent's thread at the fork would stay held in the child).
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._looking = threading.Lock()  # held while the thread looks: flush() waits for that look
        self._names: set[str] = set()
        self._due = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, names: Iterable[str]) -> None:
        with self._lock:
            self._names.update(names)
            if self._thread is None or not self._thread.is_alive():  # first use, or it died of a BaseException
                self._thread = threading.Thread(target=self._run, name="cqrs-wakeups", daemon=True)
                self._thread.start()
        if not self._due.is_set():
            self._due.set()

    def _take(self) -> set[str]:
        with self._lock:
            self._due.clear()
            names, self._names = self._names, set()
        return names

    def _run(self) -> None:
        while True:
            self._due.wait()
            with self._looking:
                names = self._take()
                if names:
                    self._look(names)
            self._pause()

    def _pause(self) -> None:
        time.sleep(_interval())

    def _look(self, names: set[str]) -> None:
        try:
            check(sorted(names))
        except Exception:  # the thread must outlive a failure; the beat sweep covers this look
            logger.exception("wake-up check of %s failed", sorted(names))

    def flush(self, timeout: float = 5.0) -> None:
        """Make the look still owed now, in this thread, once the thread's look under way (if any) is done."""
        acquired = self._looking.acquire(timeout=timeout)
        try:
            names = self._take()
            if names:
                self._look(names)
        finally:
            if acquired:
                self._looking.release()


_checks = _Checks()
os.register_at_fork(after_in_child=_checks._reset)
atexit.register(_checks.flush)


def flush() -> None:
    """Make this process's owed wake-up look now (a pool process that stops, tests)."""
    _checks.flush()


def _mark_and_publish(names: Sequence[str], now: float, *, eager: bool) -> None:
    """Mark the projections dirty (fresh), then publish a wake-up for each that has none waiting.

    ``eager`` is the caller's view of Celery's mode: the checking thread passes False, so a test
    that switches to eager meanwhile never gets a projection run on that thread.
    """
    from .tasks import run_projection_task

    try:
        cache.set_many({_dirty_key(n): now for n in names}, timeout=MARK_SECONDS)
    except Exception:  # without the mark a busy runner may miss this wake-up: the sweep covers it
        logger.warning("could not mark projections %s dirty", names, exc_info=True)
    for name in names:
        if not eager and not _claim_pending(name, now):
            continue  # a wake-up is waiting in the queue: its run starts later and reads this commit
        try:
            run_projection_task.apply_async(args=[name], priority=DEFAULT_PRIORITY)
        except Exception:
            logger.warning("could not wake projection %s; the beat sweep will catch up", name, exc_info=True)
            if not eager:
                started(name)  # nothing waits: the next command may try again


def _pending_key(name: str) -> str:
    return f"cqrs:projection-pending:{name}"


def _claim_pending(name: str, now: float) -> bool:
    """Whether no wake-up of ``name`` was waiting (now one is: the caller publishes it); True if the cache fails."""
    try:
        return bool(cache.add(_pending_key(name), now, timeout=PENDING_SECONDS))
    except Exception:
        return True


def started(name: str) -> None:
    """The task's run starts: its message no longer waits, so the next wake-up must be published."""
    try:
        cache.delete(_pending_key(name))
    except Exception:  # the key then outlives its message by at most PENDING_SECONDS
        logger.warning("could not clear the pending wake-up of %s", name, exc_info=True)


def _marks(names: Sequence[str]) -> dict[str, object]:
    """The projections' dirty marks (one round trip); none when the cache cannot answer.

    On django-redis one plain ``MGET``: every command after its commit asks, and the cache API's
    ``get_many`` (key building per call, per-value decoding) cost a third more client CPU than
    the round trip itself.
    """
    keys = [_dirty_key(n) for n in names]
    try:
        client = getattr(cache, "client", None)
        if client is None or not hasattr(client, "get_client"):
            return cache.get_many(keys)
        values = client.get_client(write=False).mget([client.make_key(k) for k in keys])
        return {key: client.decode(value) for key, value in zip(keys, values, strict=True) if value is not None}
    except Exception:
        return {}


def _fresh(mark: object, now: float) -> bool:
    """Whether a mark was written less than ``FRESH_SECONDS`` ago (older writers stored ``1``)."""
    return isinstance(mark, (int, float)) and 0 <= now - mark < FRESH_SECONDS


def wake_again(name: str) -> None:
    """A runner that used up its time slice queues itself behind the work already waiting.

    Its wake-up joins the same line as every other wake-up and saga step (one Celery priority
    for all of them, ``commands.DEFAULT_PRIORITY``), at the back: the projections that keep
    moving take turns with each other and with the sagas. (It used to go at the lowest priority,
    behind everything: under steady load the ordinary wake-ups of the projections that had caught
    up kept coming first, and a runner that had yielded waited until its mark went stale and a
    command woke it again, about ``FRESH_SECONDS``: trading.trades' lag p99 was 1.0-1.3 s at 200
    commands/s, with gaps of a second between its checkpoints; now 0.2 s.)

    It marks the projection dirty first (fresh), so the commands meanwhile publish nothing more;
    once that mark is older than ``FRESH_SECONDS`` a command marks it again. When another wake-up
    of the projection is still waiting in the queue nothing is published (``_pending_key``): that
    run reads everything this one leaves, and a second line of runners ends here.
    """
    from .tasks import run_projection_task

    _mark_and_publish([name], time.time(), eager=run_projection_task.app.conf.task_always_eager)
