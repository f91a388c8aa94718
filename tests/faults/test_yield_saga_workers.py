"""The yield saga on real workers, with a worker SIGKILLed mid-step, and with duplicate deliveries and two beats.

A step is held mid-way for real: the test's own PostgreSQL transaction inserts (and does not
commit) the next version of the user's portfolio stream, so the saga's ``OpenYieldPositions``
append waits on the unique key (stream, version) — inside the step, its lease taken. Then either
the whole worker group is SIGKILLed (a new worker and the beat sweep finish the sagas), or, with a
visibility timeout of 1 s, Redis hands the running task to a second worker while two beats send
every sweep twice. Either way every saga ends completed or compensated with each step's effect
once, the reservation is accounted to the cent (reserved = opened principal + released), cash +
reserved + yield principal equals the deposits, and every read model equals a replay.
"""
from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest

from .support import PrivatePostgres, PrivateRedis, Stack, base_env, missing_tools, temporary_root, wait_until

pytestmark = [pytest.mark.services, pytest.mark.faults, pytest.mark.timeout(600),
              pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))]

DEPOSIT = Decimal("100000")
#: (targets, tolerance, amount): four open positions; the last ends early (no protocol the
#: tolerance accepts) and releases its reservation, through the same portfolio stream.
REQUESTS = [("any", "moderate", Decimal("5000")), ("any", "aggressive", Decimal("7000.01")),
            ("any", "conservative", Decimal("3000.5")), ("any", "moderate", Decimal("9999.99")),
            (["degen-farm-base"], "conservative", Decimal("2500"))]
AMOUNTS = [amount for *_, amount in REQUESTS]
STRATEGIES = len(REQUESTS)


@pytest.fixture
def stack() -> Iterator[tuple[PrivatePostgres, Stack]]:
    with temporary_root() as root:
        pg = PrivatePostgres(root)
        pg.init()
        redis = PrivateRedis(root, "broker")
        redis.start()
        app = Stack(root, base_env(DATABASE_URL=pg.url(), CELERY_BROKER_URL=redis.url(0),
                                   CELERY_TASK_ALWAYS_EAGER="false", CQRS_SWEEP_SECONDS="1",
                                   CQRS_SAGA_SWEEP_SECONDS="1", YIELD_SIMULATED_FEED="false"))
        try:
            app.manage("migrate", "--noinput", "-v", "0")
            app.manage("load_yield_protocols")
            app.create_user()
            app.serve()
            yield pg, app
        finally:
            app.close()
            redis.stop()
            pg.stop("immediate")


class StreamHold:
    """An uncommitted insert of a stream's next version: whoever appends to the stream waits on it."""

    def __init__(self, pg: PrivatePostgres, stream: str) -> None:
        self.pg = pg
        self.conn = psycopg.connect(pg.url())
        (version,) = self.conn.execute("SELECT COALESCE(max(stream_version), 0) FROM cqrs_event WHERE stream_id = %s",
                                       (stream,)).fetchone()
        self.conn.execute(
            "INSERT INTO cqrs_event (stream_id, stream_version, event_type, schema_version, data, event_id, "
            "metadata, recorded_at) VALUES (%s, %s, 'faults.Hold', 1, '{}', %s, '{}', now())",
            (stream, version + 1, uuid.uuid4()))

    def waiters(self) -> int:
        """Backends waiting for this transaction (the saga step's append). Asked on another connection:
        a transaction sees pg_stat_activity as it was at its first look."""
        (n,) = self.pg.query("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                             self.conn.info.backend_pid)[0]
        return int(n)

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()


def portfolio_stream(pg: PrivatePostgres) -> str:
    (user_id,) = pg.query("SELECT id FROM auth_user WHERE username = 'faulty'")[0]
    return f"portfolio-{user_id}"


def request_strategies(app: Stack) -> list[str]:
    assert app.deposit(str(uuid.uuid4()), DEPOSIT).status == 201
    ids = []
    for protocols, tolerance, amount in REQUESTS:
        reply = app.request("POST", "/api/yield/strategies/", {"protocols": protocols, "amount": str(amount),
                                                               "risk_tolerance": tolerance},
                            {"Idempotency-Key": str(uuid.uuid4())})
        assert reply.status == 202, reply.body
        ids.append(reply.body["strategy_id"])
    return ids


def ended(pg: PrivatePostgres) -> int:
    (n,) = pg.query("SELECT count(*) FROM cqrs_event "
                    "WHERE event_type IN ('saga.SagaCompleted', 'saga.SagaCompensated')")[0]
    return int(n)


def caught_up(app: Stack) -> bool:
    """No projection behind the events of its types (``manage.py projections --check`` exits 0)."""
    try:
        app.manage("projections", "--check", "--max-lag-events", "0")
    except AssertionError:
        return False
    return True


def assert_every_effect_once(pg: PrivatePostgres, app: Stack, strategies: list[str]) -> dict[str, int]:
    """Every saga ended once with each step and compensation once; money exact; read models = replay."""
    sagas = pg.query("SELECT data->>'saga_id' FROM cqrs_event WHERE event_type = 'saga.SagaStarted'")
    assert len(sagas) == len(strategies)
    endings = Counter(kind for (kind,) in pg.query(
        "SELECT event_type FROM cqrs_event WHERE event_type IN ('saga.SagaCompleted', 'saga.SagaCompensated')"))
    assert sum(endings.values()) == len(strategies), endings
    per_step = pg.query("SELECT data->>'saga_id', event_type, data->>'step', count(*) FROM cqrs_event "
                        "WHERE event_type IN ('saga.StepCompleted', 'saga.CompensationCompleted', 'saga.SagaCompleted',"
                        " 'saga.SagaCompensated') GROUP BY 1, 2, 3")
    assert {count for *_, count in per_step} == {1}, per_step
    executed = {saga for saga, kind, step, _ in per_step
                if kind == "saga.StepCompleted" and step == "execute_positions"}
    assert len(executed) == STRATEGIES - 1, "all but the early end opened positions"

    opened = pg.query("SELECT data->>'strategy_id', data->>'protocol', count(*), sum((data->>'principal')::numeric) "
                      "FROM cqrs_event WHERE event_type = 'yield_farming.YieldPositionOpened' GROUP BY 1, 2")
    assert {count for _, _, count, _ in opened} == {1}, opened
    closed = pg.query("SELECT data->>'position_id', count(*) FROM cqrs_event "
                      "WHERE event_type = 'yield_farming.YieldPositionClosed' GROUP BY 1")
    assert {count for _, count in closed} <= {1}, closed
    released = pg.query("SELECT data->>'reservation_id', data->>'reason', count(*) FROM cqrs_event "
                        "WHERE event_type = 'portfolio.ReservationReleased' GROUP BY 1, 2")
    assert {count for *_, count in released} <= {1}, released
    for strategy, amount in zip(strategies, AMOUNTS, strict=True):
        (reserved,) = pg.query("SELECT COALESCE(sum((data->>'amount')::numeric), 0) FROM cqrs_event "
                               "WHERE event_type = 'portfolio.FundsReserved' AND data->>'reservation_id' = %s",
                               strategy)[0]
        (principal,) = pg.query("SELECT COALESCE(sum((data->>'principal')::numeric), 0) FROM cqrs_event "
                                "WHERE event_type = 'yield_farming.YieldPositionOpened' AND data->>'strategy_id' = %s",
                                strategy)[0]
        (back,) = pg.query("SELECT COALESCE(sum((data->>'amount')::numeric), 0) FROM cqrs_event "
                           "WHERE event_type = 'portfolio.ReservationReleased' AND data->>'reservation_id' = %s",
                           strategy)[0]
        assert reserved == amount == principal + back, (strategy, reserved, principal, back)

    cash, reserved, principal = pg.query("SELECT cash, reserved, yield_principal FROM portfolio_portfolio")[0]
    assert reserved == 0 and cash + reserved + principal == DEPOSIT, (cash, reserved, principal)
    wait_until(lambda: caught_up(app), 60, "every projection at the head", interval=1)
    assert "all" in app.manage("verify_projections")  # exits non-zero when a read model differs from its replay
    return dict(endings)


def test_a_worker_killed_mid_step_leaves_every_yield_saga_ended_with_each_effect_once(
        stack: tuple[PrivatePostgres, Stack], capsys: pytest.CaptureFixture[str]) -> None:
    pg, app = stack
    strategies = request_strategies(app)  # no worker yet: the requests wait in the event store
    hold = StreamHold(pg, portfolio_stream(pg))
    try:
        first = app.worker()
        app.beat()
        wait_until(lambda: hold.waiters() > 0, 90, "a saga step blocked in its portfolio append")
        leased = pg.query("SELECT count(*) FROM cqrs_saga WHERE lease_owner <> ''")[0][0]
        assert leased >= 1, "the worker is inside a step (its lease taken)"
        app.kill(first)  # the whole worker group, mid-step
    finally:
        hold.release()
    killed_at = ended(pg)
    app.worker()
    waited = wait_until(lambda: ended(pg) == STRATEGIES, 180, "every saga to end after the restart")
    endings = assert_every_effect_once(pg, app, strategies)
    with capsys.disabled():
        print(f"\n[yield saga, worker killed mid-step] sagas={STRATEGIES} leased_at_kill={leased} "
              f"ended_at_kill={killed_at} ended_after={waited:.1f}s {endings}")


def test_duplicate_deliveries_and_two_beats_apply_every_yield_saga_effect_once(
        stack: tuple[PrivatePostgres, Stack], capsys: pytest.CaptureFixture[str]) -> None:
    pg, app = stack
    # A visibility timeout far below a held step: Redis hands the running task to the other worker.
    app.env.update(CELERY_VISIBILITY_TIMEOUT="1", CELERY_UNACKED_RESTORE_INTERVAL="1", LOG_LEVEL="INFO")
    strategies = request_strategies(app)
    hold = StreamHold(pg, portfolio_stream(pg))
    try:
        # More pool slots than sagas: every saga's step may block, and a slot stays free for the duplicates.
        app.worker(concurrency=4, loglevel="info")
        app.worker(concurrency=4, loglevel="info")
        app.beat("beat-1")
        app.beat("beat-2")
        wait_until(lambda: hold.waiters() > 0, 90, "a saga step blocked in its portfolio append")
        wait_until(lambda: duplicated(app), 30, "a task delivered twice while it runs", interval=0.5)
        time.sleep(3)  # a few more visibility timeouts with the step still held
    finally:
        hold.release()
    waited = wait_until(lambda: ended(pg) == STRATEGIES, 180, "every saga to end")
    endings = assert_every_effect_once(pg, app, strategies)
    twice = duplicated(app)
    with capsys.disabled():
        print(f"\n[yield saga, duplicate deliveries + two beats] sagas={STRATEGIES} tasks delivered more than once="
              f"{len(twice)} ({Counter(name for name, _ in twice)}) ended_after={waited:.1f}s {endings}")


RECEIVED = re.compile(r"Task (\S+)\[([0-9a-f-]{36})\] received")


def duplicated(app: Stack) -> list[tuple[str, str]]:
    """(task name, id) of the tasks the workers received more than once."""
    counts = Counter(RECEIVED.findall(app.logs("worker-")))
    return [key for key, n in counts.items() if n > 1]
