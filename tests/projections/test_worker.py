"""A real Celery worker process projects committed events, and a SIGKILLed one loses and doubles nothing.

Services only: the worker is a separate process, so it needs the shared PostgreSQL test database
and a real broker. It runs ``config.settings.test`` against the database pytest-django created.
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from config.celery import app as celery_app
from cqrs_core.models import ProjectionState
from cqrs_core.projections import _dirty_key, projections, rebuild, sweep
from cqrs_core.store import append, head_position
from cqrs_core.tasks import run_projection_task
from tests.bus_app.events import AccountOpened, FundsDeposited
from tests.bus_app.models import AccountBalance, LedgerEntry

from .conftest import (
    BALANCES, LEDGER, balances_rows, deposit, ledger_counts_per_position, ledger_rows, money_positions, open_account,
)

BASE_DIR = Path(settings.BASE_DIR)
WAIT_SECONDS = 60
KILL_EVENTS = 3000

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")) or connection.vendor != "postgresql",
        reason="needs a real broker and PostgreSQL (the worker is another process)",
    ),
]


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Workers:
    """Starts ``celery worker`` processes in their own process groups; kills them all at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.log = tempfile.NamedTemporaryFile("w+", prefix="projection-worker-", suffix=".log", delete=False)

    def start(self) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "PYTHONPATH": str(BASE_DIR),
        }
        command = [str(BASE_DIR / ".venv/bin/celery"), "-A", "config", "worker", "-l", "warning", "--concurrency", "1",
                   "--pool", "prefork", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE,
                   "-n", f"projection-test-{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle"]
        proc = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL the worker's whole process group (parent and pool children)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)

    def kill_all(self) -> None:
        for proc in self.procs:
            self.kill(proc)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-3000:]


@pytest.fixture
def workers() -> Iterator[Workers]:
    assert celery_app.conf.task_always_eager is False, "wake-ups must go to the broker"
    celery_app.control.purge()
    # A purged wake-up's fresh dirty mark must not hold back the next ones (cqrs_core.wakeups).
    cache.delete_many([_dirty_key(projection.name) for projection in projections()])
    pool = Workers()
    try:
        yield pool
    finally:
        pool.kill_all()
        pool.log.close()
        os.unlink(pool.log.name)


def wait_for(condition: Callable[[], bool], what: str, workers: Workers, *, every: Callable[[], object] | None = None,
             every_seconds: float = 3.0) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    next_nudge = time.monotonic() + every_seconds
    while not condition():
        now = time.monotonic()
        assert now < deadline, f"timed out waiting for {what}; worker log:\n{workers.output()}"
        if every is not None and now >= next_nudge:
            every()
            next_nudge = now + every_seconds
        time.sleep(0.05)


def position(name: str) -> int:
    return ProjectionState.objects.filter(name=name).values_list("position", flat=True).first() or 0


def test_wakeups_from_commands_reach_a_real_worker(workers: Workers) -> None:
    workers.start()
    account = open_account()
    amounts = [Decimal(f"{i}.25") for i in range(1, 21)]
    for amount in amounts:
        deposit(account, amount)  # after commit: a wake-up message to the broker, nothing inline

    head = head_position()
    wait_for(lambda: position(LEDGER) >= head and position(BALANCES) >= head, "the worker to catch up", workers)
    assert AccountBalance.objects.get(account_id=account).balance == sum(amounts)
    assert ledger_counts_per_position() == {p: 1 for p in money_positions()}
    assert len(money_positions()) == len(amounts)


def test_a_worker_killed_mid_batch_changes_nothing_twice(workers: Workers, capsys: pytest.CaptureFixture) -> None:
    # A backlog written with no worker running (the event table is the outbox).
    accounts = [uuid.uuid4() for _ in range(3)]
    for n, account in enumerate(accounts):
        stream = f"bus_app.account-{account}"
        append(stream, [AccountOpened(account_id=account, owner_id=1, currency="USD")], 0)
        version = 1
        for _ in range(KILL_EVENTS // len(accounts) // 250):
            append(stream, [FundsDeposited(account_id=account, amount=Decimal(f"{n + 1}.{i % 100:02d}"))
                            for i in range(250)], version)
            version += 250
    head = head_position()
    events = len(money_positions())
    assert events == KILL_EVENTS

    first = workers.start()
    run_projection_task.apply_async(args=[LEDGER])
    wait_for(lambda: position(LEDGER) > 0, "the first worker to start applying", workers)
    workers.kill(first)
    killed_at = position(LEDGER)
    assert 0 < killed_at < head, f"killed at {killed_at} of {head}: not mid-way"
    rows_at_kill = LedgerEntry.objects.count()

    workers.start()
    sweep()  # what Celery beat does every few seconds; repeated while waiting, as beat would
    wait_for(lambda: position(LEDGER) >= head and position(BALANCES) >= head, "the second worker to catch up",
             workers, every=sweep)
    workers.kill_all()

    counts = ledger_counts_per_position()
    assert set(counts) == set(money_positions()) and set(counts.values()) == {1}
    live = (ledger_rows(), balances_rows())
    assert ProjectionState.objects.get(name=LEDGER).events_applied == events
    rebuild(LEDGER)
    rebuild(BALANCES)
    assert (ledger_rows(), balances_rows()) == live
    with capsys.disabled():
        print(f"\n[worker kill] events={events} head={head} checkpoint_at_kill={killed_at} "
              f"ledger_rows_at_kill={rows_at_kill} final_ledger_rows={sum(live[0].values())} "
              f"balances={sorted(str(b) for *_, b, _t, _p in live[1])} equal_to_rebuild=True")
