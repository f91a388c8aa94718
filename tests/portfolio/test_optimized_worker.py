"""The optimised portfolio computed by a real Celery worker process: 202 at once, then 200 with the result.

Services only, like ``tests/projections/test_worker.py``, whose worker helpers are reused: the
worker also runs the projections, so the test waits for the read model before it asks.
"""
from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from cqrs_core.projections import sweep
from cqrs_core.store import head_position
from market.projections import CANDLES
from portfolio.models import OptimizedPortfolio
from tests.projections.test_worker import Workers, wait_for, workers  # noqa: F401  (fixture)
from tests.projections.test_worker import position as projected

from .test_optimized_api import OPTIMIZED, invest, price_history  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")) or connection.vendor != "postgresql",
        reason="needs a real broker and PostgreSQL (the worker is another process)",
    ),
]


def test_a_real_worker_computes_the_optimisation_the_first_call_started(api: APIClient, alice: Any,
                                                                        workers: Workers) -> None:  # noqa: F811
    workers.start()
    candles = head_position()  # recorded by the price_history fixture before the worker started
    wait_for(lambda: projected(CANDLES) >= candles, "the worker to project the candles", workers, every=sweep)
    position = invest(api)
    first = api.get(OPTIMIZED, {"min_position": position})
    assert first.status_code == 202, first.content
    assert first.json()["data"]["status"] == "computing" and first.json()["stale"] is False
    assert api.get(OPTIMIZED).status_code in (200, 202)  # a second call starts nothing new

    def ready() -> bool:
        return OptimizedPortfolio.objects.filter(pk=alice.pk, status=OptimizedPortfolio.Status.READY).exists()

    wait_for(ready, "the worker's optimisation", workers, every=sweep)
    answer = api.get(OPTIMIZED)
    assert answer.status_code == 200, answer.content
    data = answer.json()["data"]
    assert data["status"] == "ready" and data["assets"] == ["BNB", "BTC", "ETH", "SOL"]
    assert set(data["proposals"]) == {"min_variance", "max_sharpe"}
    assert OptimizedPortfolio.objects.get(pk=alice.pk).duration_ms is not None
