"""Redis stopped, as the cache and as the broker, and a RabbitMQ broker stopped, under commands and queries.

Cache down: queries still answer from the database and commands still commit, each within a few
seconds (cache calls time out after 0.5 s and are swallowed); the read model ends equal to the events.
Broker down: commands still commit (the wake-up is lost, not the event); when the broker returns,
the beat sweep brings the projection up to date with real workers — nothing lost, nothing doubled.
The same with a private RabbitMQ node halted (``rabbitmqctl stop``) and started again.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any
from decimal import Decimal

import pytest
import redis as redis_client

from .support import (
    RABBITMQ_SERVER, PrivatePostgres, PrivateRabbitMQ, PrivateRedis, Stack, base_env, missing_tools, temporary_root,
    wait_until,
)

pytestmark = [pytest.mark.services, pytest.mark.faults, pytest.mark.timeout(600),
              pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))]

#: A request during an outage must not hang: generous, it only catches blocking on a dead service.
OUTAGE_ANSWER_BOUND = 5.0


@pytest.fixture
def services() -> Iterator[tuple[PrivatePostgres, PrivateRedis, Stack]]:
    with temporary_root() as root:
        pg = PrivatePostgres(root)
        pg.init()
        redis = PrivateRedis(root, "main")
        redis.start()
        app = Stack(root, base_env(DATABASE_URL=pg.url()))
        try:
            yield pg, redis, app
        finally:
            app.close()
            redis.stop()
            pg.stop("immediate")


def _cash(pg: PrivatePostgres) -> Decimal:
    rows = pg.query("SELECT cash FROM portfolio_portfolio")
    return Decimal(rows[0][0]) if rows else Decimal(0)


def _deposited(pg: PrivatePostgres) -> Decimal:
    rows = pg.query("SELECT data->>'amount' FROM cqrs_event WHERE event_type = 'portfolio.FundsDeposited'")
    return sum((Decimal(a) for (a,) in rows), Decimal(0))


def test_queries_and_commands_work_while_the_cache_is_down(
        services: tuple[PrivatePostgres, PrivateRedis, Stack]) -> None:
    pg, redis, app = services
    app.env.update(CACHE_URL=redis.url(1))
    app.manage("migrate", "--noinput", "-v", "0")
    app.create_user()
    app.serve()
    sent = Decimal(0)
    assert app.deposit(str(uuid.uuid4()), Decimal("100.00")).status == 201
    sent += Decimal("100.00")
    assert app.request("GET", "/api/portfolio/").status == 200  # cached now

    redis.stop()
    replies = []
    for n in range(10):
        amount = Decimal(n + 1)
        deposit = app.deposit(str(uuid.uuid4()), amount)
        query = app.request("GET", f"/api/portfolio/?min_position={deposit.body.get('position', 0)}")
        replies += [deposit, query]
        if deposit.status == 201:
            sent += amount
    statuses = [(r.status, round(r.seconds, 2)) for r in replies]
    assert all(r.status in (200, 201) for r in replies), statuses
    assert all(r.seconds < OUTAGE_ANSWER_BOUND for r in replies), statuses
    # Served from the database: the last query shows the last deposit, not the cached answer.
    assert Decimal(replies[-1].body["data"]["cash"]) == sent

    redis.start()
    after = app.deposit(str(uuid.uuid4()), Decimal("5"))
    assert after.status == 201
    sent += Decimal("5")
    fresh = app.request("GET", f"/api/portfolio/?min_position={after.body['position']}")
    assert fresh.status == 200 and Decimal(fresh.body["data"]["cash"]) == sent
    assert _deposited(pg) == sent == _cash(pg)


def test_commands_commit_while_the_broker_is_down_and_the_sweep_catches_up(
        services: tuple[PrivatePostgres, PrivateRedis, Stack]) -> None:
    pg, redis, app = services
    waited = broker_outage(pg, app, redis.url(2), stop=redis.stop, start=redis.start,
                           idle=lambda: _redis_queues_idle(redis.url(2)))
    print(f"\nredis broker back: read model caught up in {waited:.1f} s")


@pytest.mark.skipif(RABBITMQ_SERVER is None, reason="needs rabbitmq-server")
def test_commands_commit_while_rabbitmq_is_down_and_the_sweep_catches_up(
        services: tuple[PrivatePostgres, PrivateRedis, Stack]) -> None:
    pg, _, app = services
    rabbit = PrivateRabbitMQ(app.root)
    rabbit.start()
    try:
        waited = broker_outage(pg, app, rabbit.url(), stop=rabbit.stop, start=rabbit.start,
                               idle=lambda: _rabbit_queues_idle(rabbit))
    finally:
        app.close()  # the workers first: they would otherwise keep reconnecting to the halted node
        rabbit.stop()
    print(f"\nrabbitmq back: read model caught up in {waited:.1f} s")


def _redis_queues_idle(url: str) -> bool:
    """No task message waits in a queue, and none is delivered and unacknowledged (kombu's ``unacked`` hash)."""
    client = redis_client.Redis.from_url(url)
    try:
        waiting = sum(client.llen(key) for key in client.keys("*") if client.type(key) == b"list")
        return waiting == 0 and client.hlen("unacked") == 0
    finally:
        client.close()


def _rabbit_queues_idle(rabbit: PrivateRabbitMQ) -> bool:
    """No message ready or unacknowledged in any queue of the node."""
    out = rabbit.ctl("list_queues", "-q", "--no-table-headers", "name", "messages").stdout
    return all(int(line.split()[-1]) == 0 for line in out.splitlines() if line.strip())


def _settled(idle: Any) -> bool:
    """The broker is idle at two looks a sweep period apart: no run of the worker is in flight or waiting.

    A task delivered before the broker stops still runs after it, and reads every commit made
    meanwhile; the outage below is meant to start with nothing left that could wake a runner.
    """
    if not idle():
        return False
    time.sleep(1.2)
    return bool(idle())


def broker_outage(pg: PrivatePostgres, app: Stack, broker_url: str, stop: Any, start: Any, idle: Any) -> float:
    """Deposits while the broker is stopped all commit; once it is back, beat's sweep catches up."""
    app.env.update(CELERY_BROKER_URL=broker_url, CELERY_TASK_ALWAYS_EAGER="false", CQRS_SWEEP_SECONDS="1",
                   CQRS_SAGA_SWEEP_SECONDS="2", CELERY_BROKER_CONNECTION_TIMEOUT="1")
    app.manage("migrate", "--noinput", "-v", "0")
    app.create_user()
    app.serve()
    app.worker()
    app.beat()
    first = app.deposit(str(uuid.uuid4()), Decimal("10"))
    assert first.status == 201
    wait_until(lambda: _cash(pg) == Decimal("10"), 60, "the worker projects the first deposit")
    wait_until(lambda: _settled(idle), 60, "no task left in flight or waiting in the broker")

    stop()
    sent = Decimal("10")
    replies = []
    for n in range(8):
        reply = app.deposit(str(uuid.uuid4()), Decimal(n + 1))
        replies.append((reply.status, round(reply.seconds, 2)))
        if reply.status == 201:
            sent += Decimal(n + 1)
    assert all(status == 201 for status, _ in replies), replies
    assert all(seconds < OUTAGE_ANSWER_BOUND for _, seconds in replies), replies
    assert _deposited(pg) == sent, "every acknowledged command is in the event store"
    time.sleep(2)
    assert _cash(pg) < sent, "with the broker down no worker should have been woken"

    start()
    waited = wait_until(lambda: _cash(pg) == sent, 120, "beat's sweep brings the projection up to date")
    assert _cash(pg) == _deposited(pg) == sent
    return waited
