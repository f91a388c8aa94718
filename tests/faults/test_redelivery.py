"""When does the broker redeliver a task whose worker was SIGKILLed (``acks_late``)?

A task a worker has taken sits in Redis' "unacked" set; nothing acknowledges or rejects it when the
whole worker dies, so it runs again only when some worker's periodic ``restore_visible`` scan finds
it older than ``visibility_timeout`` (counted from its delivery, not from the kill). Kombu scans every
``unacked_restore_interval`` x ``unacked_restore_throttle`` seconds (10 x 10 by default) and once
when a worker starts. Here: a real worker runs a long task, its process group is SIGKILLed, a new
worker starts, and the test times the task's second start. The figures are in the README
("Failure behaviour") and beside ``CELERY_BROKER_TRANSPORT_OPTIONS``.

RabbitMQ needs no timeout: the dead worker's connection closes with it and the broker requeues its
unacknowledged deliveries at once; the new worker gets the task as soon as it is up.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from kombu import Connection
from django.conf import settings

from .support import (
    RABBITMQ_SERVER, VENV_BIN, PrivateRabbitMQ, PrivateRedis, Stack, base_env, missing_tools, temporary_root,
    wait_until,
)

pytestmark = [pytest.mark.services, pytest.mark.faults, pytest.mark.timeout(300),
              pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))]

#: The worker starts, connects and scans within this; the scan period adds to it.
SLACK = 8.0
#: Killed this long after the task started: well inside any visibility timeout measured here.
KILL_AFTER = 2.0


@pytest.fixture
def broker() -> Iterator[tuple[Path, PrivateRedis]]:
    with temporary_root() as root:
        redis = PrivateRedis(root, "broker")
        redis.start()
        try:
            yield root, redis
        finally:
            redis.stop()


def scan_period(options: dict[str, Any]) -> float:
    """Kombu's seconds between two scans of the unacked set (its defaults: 10 x 10)."""
    return options.get("unacked_restore_interval", 10) * options.get("unacked_restore_throttle", 10)


def _starts(markers: Path) -> list[float]:
    return sorted(float(p.name.split("-")[0]) for p in markers.iterdir())


def measure_redelivery(root: Path, broker_url: str, options: dict[str, Any], bound: float) -> dict[str, float]:
    """Seconds from the first start (delivery) and from the kill to the task's second start."""
    markers = root / f"markers-{len(list(root.glob('markers-*')))}"
    markers.mkdir()
    env = base_env(CELERY_BROKER_URL=broker_url, REDELIVERY_TRANSPORT_OPTIONS=json.dumps(options))
    del env["DJANGO_SETTINGS_MODULE"]  # a plain Celery app: no Django set-up in its worker
    stack = Stack(root, env)
    command = [str(VENV_BIN / "celery"), "-A", "tests.faults.redelivery_app", "worker", "-l", "warning",
               "--concurrency", "1", "--pool", "prefork", "--without-gossip", "--without-mingle"]
    try:
        first = stack.spawn("redelivery-worker", [*command, "-n", "first@%h"])
        # An explicit connection: the outer run's CELERY_BROKER_URL would win over Celery(broker=...).
        with Connection(broker_url) as connection:
            Celery().send_task("redelivery.hold", args=[str(markers), 3600], connection=connection)
        wait_until(lambda: len(_starts(markers)) == 1, 60, "the first worker starts the task")
        time.sleep(KILL_AFTER)
        stack.kill(first)
        killed = time.time()
        stack.spawn("redelivery-worker", [*command, "-n", "second@%h"])
        wait_until(lambda: len(_starts(markers)) == 2, bound, "the task runs again", interval=0.2)
        started, again = _starts(markers)
        return {"after_delivery": again - started, "after_kill": again - killed}
    finally:
        stack.close()


@pytest.mark.parametrize("options", [
    pytest.param(dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS), id="project-settings"),
    pytest.param({"visibility_timeout": 10, "unacked_restore_interval": 1, "unacked_restore_throttle": 1},
                 id="timeout-10s-scan-1s"),
])
def test_a_task_lost_with_its_killed_worker_runs_again_after_the_visibility_timeout(
        broker: tuple[Path, PrivateRedis], options: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    root, redis = broker
    timeout, scan = options["visibility_timeout"], scan_period(options)
    measured = measure_redelivery(root, redis.url(0), options, bound=timeout + scan + 3 * SLACK)
    with capsys.disabled():
        print(f"\n[redelivery] options={options} after_delivery={measured['after_delivery']:.1f}s "
              f"after_kill={measured['after_kill']:.1f}s")
    # Never before the visibility timeout (a running task is not taken from a live worker earlier),
    # and no later than one scan period (plus start-up) after it.
    assert timeout <= measured["after_delivery"] <= timeout + scan + SLACK, measured


@pytest.mark.skipif(RABBITMQ_SERVER is None, reason="needs rabbitmq-server")
def test_rabbitmq_redelivers_a_task_lost_with_its_killed_worker_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    with temporary_root() as root:
        rabbit = PrivateRabbitMQ(root)
        try:
            rabbit.start()
            measured = measure_redelivery(root, rabbit.url(), {}, bound=60)
        finally:
            rabbit.stop()
    with capsys.disabled():
        print(f"\n[redelivery] rabbitmq after_delivery={measured['after_delivery']:.1f}s "
              f"after_kill={measured['after_kill']:.1f}s")
    assert measured["after_kill"] <= SLACK, measured  # the new worker's start-up, nothing more
