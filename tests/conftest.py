"""Shared fixtures: a deterministic command context and a plain user actor."""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from celery._state import _set_task_join_will_block

from config.celery import app as celery_app
from cqrs_core.commands import SYSTEM, Actor, CommandContext

FIXED_NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def context(*, actor: Actor = SYSTEM, now: dt.datetime = FIXED_NOW, seed: int = 0,
            lookups: Mapping[str, Any] | None = None) -> CommandContext:
    """A CommandContext with a fixed clock and predictable ids (uuid5 of ``seed`` and a counter)."""
    counter = iter(range(1, 1_000_000))

    def new_id() -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_OID, f"{seed}:{next(counter)}")

    return CommandContext(
        now=now, actor=actor, command_id=uuid.uuid5(uuid.NAMESPACE_OID, f"{seed}:command"),
        correlation_id=uuid.uuid5(uuid.NAMESPACE_OID, f"{seed}:correlation"), lookups=lookups or {},
        id_factory=new_id,
    )


@pytest.fixture
def actor() -> Actor:
    """A plain (non-staff) user with id 1."""
    return Actor(user_id=1)


@pytest.fixture(autouse=True)
def forget_kept_prices() -> None:
    """Each process keeps its last latest prices under a cache version; tests roll the candle rows back."""
    import market.queries

    market.queries._latest = None


def _forget_pending_wakeups() -> None:
    """A test that stood in for the broker leaves "a wake-up is waiting" keys (up to 5 s) behind it."""
    from django.core.cache import cache

    from cqrs_core.projections import projections
    from cqrs_core.wakeups import _pending_key

    try:
        cache.delete_many([_pending_key(p.name) for p in projections()])
    except Exception:  # tests of a cache that cannot answer
        pass


@pytest.fixture(autouse=True)
def eager_wakeups(request: pytest.FixtureRequest) -> Iterator[None]:
    """Celery tasks (wake-ups, refreshes, queued commands) run inline, except in real-worker tests.

    With a real broker configured (the services run) tasks would otherwise pile up in a queue
    with no worker to take them. Tests marked ``services`` talk to a real worker instead.
    """
    # Celery keeps "joining would block" in a process-wide flag that eager apply_async sets and restores
    # around each call; eager calls racing in threads (concurrency tests) can leave it set, and then every
    # later EagerResult.get() raises "Never call result.get() within a task!". Start each test clean.
    _set_task_join_will_block(False)
    _forget_pending_wakeups()
    if request.node.get_closest_marker("services") is not None:
        from cqrs_core.wakeups import flush

        try:
            yield
        finally:
            flush()  # the wake-up look this test's commands still owe, before the next test
        return
    # Saved and restored by hand: monkeypatch's undo trips on Celery's lazy settings object.
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = before
