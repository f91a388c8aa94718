"""Liveness and readiness checks, and the views of ``/health/live/``, ``/health/ready/`` and ``/metrics``.

* Liveness says the process answers; it touches nothing else, so a database outage never gets
  web processes restarted.
* Readiness checks the database (``SELECT 1``), the cache (set then get a unique value: a
  django-redis cache with ``IGNORE_EXCEPTIONS`` swallows errors, a value that does not come
  back does not), the broker (one connection attempt, skipped when tasks run eagerly or on the
  in-memory broker) and the projections (none failed, none with an unapplied event older than
  ``CQRS_READY_MAX_LAG_SECONDS``). Each check is bounded by its client's timeouts (cache socket
  timeouts, ``HEALTH_BROKER_TIMEOUT``; the database's ``connect_timeout`` comes from
  ``DATABASE_URL``). Failures name the exception type only: the endpoint is unauthenticated.
"""
from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any
from uuid import uuid4

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

OK, FAILED, SKIPPED = "ok", "unhealthy", "skipped"
#: Seconds one broker connection attempt may take.
HEALTH_BROKER_TIMEOUT = 1.0
Check = Callable[[], dict[str, Any]]


def check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": OK}


def check_cache() -> dict[str, Any]:
    key, value = f"health:{uuid4().hex}", uuid4().hex
    cache.set(key, value, timeout=10)
    found = cache.get(key)
    cache.delete(key)
    return {"status": OK} if found == value else {"status": FAILED, "error": "value not read back"}


def check_broker() -> dict[str, Any]:
    from config.celery import app

    if app.conf.task_always_eager or str(app.conf.broker_url).startswith("memory://"):
        return {"status": SKIPPED, "reason": "tasks run eagerly" if app.conf.task_always_eager else "memory broker"}
    with app.connection_for_write(connect_timeout=HEALTH_BROKER_TIMEOUT) as conn:
        conn.ensure_connection(max_retries=0, timeout=HEALTH_BROKER_TIMEOUT)
    return {"status": OK}


def check_projections() -> dict[str, Any]:
    """Failed projections and projections lagging more than the bound make the app unready."""
    from .projections import lag

    bound = float(getattr(settings, "CQRS_READY_MAX_LAG_SECONDS", 60))
    entries, status = [], OK
    for entry in lag():
        problem = ("failed" if entry.status == "failed"
                   else "lagging" if entry.seconds_behind > bound else None)
        if problem is not None:
            status = FAILED
        entries.append({"name": entry.name, "status": entry.status, "events_behind": entry.events_behind,
                        "seconds_behind": round(entry.seconds_behind, 3),
                        "pending_dead_letters": entry.pending_dead_letters, "problem": problem})
    return {"status": status, "max_lag_seconds": bound, "projections": entries}


CHECKS: dict[str, Check] = {
    "database": check_database, "cache": check_cache, "broker": check_broker, "projections": check_projections,
}


def run_check(check: Check) -> dict[str, Any]:
    """One check's result with its time; an exception is a failure named by its type."""
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:
        result = {"status": FAILED, "error": type(exc).__name__}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def readiness() -> tuple[bool, dict[str, Any]]:
    """Whether every check passed (skipped counts as passed) and the per-check detail."""
    results = {name: run_check(check) for name, check in CHECKS.items()}
    ready = all(r["status"] != FAILED for r in results.values())
    return ready, {"status": OK if ready else FAILED, "checks": results}


class _HealthView(APIView):
    # Probes come without credentials and often: no authentication, permission or throttle work.
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []


class LivenessApi(_HealthView):
    """The process is up (touches no database, cache or broker)."""

    @extend_schema(auth=[], responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response({"status": OK})


class ReadinessApi(_HealthView):
    """200 when the database, cache, broker and projections are fine; 503 with per-check detail otherwise."""

    @extend_schema(auth=[], responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        ready, body = readiness()
        return Response(body, status=200 if ready else 503, headers={"Cache-Control": "no-store"})


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition; with ``METRICS_TOKEN`` set, only for ``Authorization: Bearer <token>``."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from .metrics import exposition

    token = getattr(settings, "METRICS_TOKEN", "")
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
