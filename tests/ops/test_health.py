"""Liveness and readiness: what each check looks at, and that a failure is a 503 naming the check."""
from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from config.celery import app as celery_app
from cqrs_core import health
from cqrs_core.bus import CommandBus
from cqrs_core.models import ProjectionState
from cqrs_core.projections import ensure_states
from tests.bus_app.commands import OpenAccount

pytestmark = pytest.mark.django_db

LIVE, READY = "/health/live/", "/health/ready/"
DEAD_REDIS = "redis://127.0.0.1:6399/0"
BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://")


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def real_broker_conf(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Celery's configuration with eager execution off, restored afterwards."""
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    conf = celery_app.conf
    before = conf.task_always_eager, conf.broker_url
    conf.task_always_eager = False
    try:
        yield conf
    finally:
        conf.task_always_eager, conf.broker_url = before


def store_an_event_an_hour_ago() -> None:
    """An AccountOpened recorded an hour ago that no async projection has applied."""
    an_hour_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    # A bus with no hooks: nothing wakes the projections, and the clock sets recorded_at.
    CommandBus(clock=lambda: an_hour_ago).dispatch(OpenAccount(account_id=uuid.uuid4()))


def test_liveness_answers_ok_without_touching_the_database(client: APIClient) -> None:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIVE)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert len(queries) == 0


def test_readiness_is_200_when_everything_is_reachable_and_caught_up(client: APIClient) -> None:
    response = client.get(READY)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok", "cache": "ok", "broker": "skipped", "projections": "ok",
    }
    assert response["Cache-Control"] == "no-store"


def test_health_endpoints_need_no_credentials_even_with_a_bad_token(client: APIClient) -> None:
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert client.get(LIVE).status_code == 200
    assert client.get(READY).status_code == 200


def test_a_failed_projection_makes_the_app_unready(client: APIClient) -> None:
    ensure_states()
    ProjectionState.objects.filter(name="bus_app.balances").update(status=ProjectionState.Status.FAILED)

    response = client.get(READY)

    assert response.status_code == 503
    projections = response.json()["checks"]["projections"]
    assert projections["status"] == "unhealthy"
    failed = {p["name"]: p["problem"] for p in projections["projections"] if p["problem"]}
    assert failed == {"bus_app.balances": "failed"}
    assert response.json()["checks"]["database"]["status"] == "ok"


def test_a_projection_lagging_past_the_bound_makes_the_app_unready(client: APIClient, settings: Any) -> None:
    settings.CQRS_READY_MAX_LAG_SECONDS = 60
    store_an_event_an_hour_ago()

    response = client.get(READY)

    assert response.status_code == 503
    lagging = {p["name"]: p for p in response.json()["checks"]["projections"]["projections"] if p["problem"]}
    assert set(lagging) == {"bus_app.balances"}  # bus_app.owners is immediate: never behind
    assert lagging["bus_app.balances"]["problem"] == "lagging"
    assert lagging["bus_app.balances"]["seconds_behind"] >= 3600


def test_a_projection_behind_within_the_bound_is_still_ready(client: APIClient, settings: Any) -> None:
    settings.CQRS_READY_MAX_LAG_SECONDS = 7200
    store_an_event_an_hour_ago()

    response = client.get(READY)

    assert response.status_code == 200
    behind = {p["name"]: p["events_behind"] for p in response.json()["checks"]["projections"]["projections"]}
    assert behind["bus_app.balances"] > 0


def test_an_unreachable_cache_makes_the_app_unready_quickly(client: APIClient, settings: Any) -> None:
    # As in production: errors swallowed by IGNORE_EXCEPTIONS, so only a value not read back tells.
    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": DEAD_REDIS,
        "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }}
    started = time.monotonic()

    response = client.get(READY)

    assert time.monotonic() - started < 3
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["cache"]["status"] == "unhealthy"
    assert checks["database"]["status"] == checks["projections"]["status"] == "ok"


def test_an_unreachable_cache_that_raises_is_reported_by_exception_type(settings: Any) -> None:
    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": DEAD_REDIS,
        "OPTIONS": {"IGNORE_EXCEPTIONS": False, "SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }}

    result = health.run_check(health.check_cache)

    assert result["status"] == "unhealthy"
    assert result["error"] == "ConnectionError"
    assert "6399" not in str(result)  # the type only: the endpoint is public


def test_an_unreachable_broker_fails_its_check_within_a_couple_of_seconds(real_broker_conf: Any) -> None:
    real_broker_conf.broker_url = DEAD_REDIS
    started = time.monotonic()

    result = health.run_check(health.check_broker)

    assert time.monotonic() - started < 3
    assert result["status"] == "unhealthy"


def test_the_broker_check_is_skipped_when_tasks_run_eagerly() -> None:
    assert health.check_broker()["status"] == "skipped"  # the suite-wide eager fixture is on


@pytest.mark.skipif(BROKER_URL.startswith("memory://"),
                    reason="needs a real broker (CELERY_BROKER_URL)")
def test_a_reachable_broker_passes_its_check(real_broker_conf: Any) -> None:
    real_broker_conf.broker_url = BROKER_URL

    assert health.run_check(health.check_broker)["status"] == "ok"


def test_a_database_error_fails_readiness_with_503(client: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("no database")

    monkeypatch.setitem(health.CHECKS, "database", broken)

    response = client.get(READY)

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"status": "unhealthy", "error": "RuntimeError",
                                                     "ms": response.json()["checks"]["database"]["ms"]}
