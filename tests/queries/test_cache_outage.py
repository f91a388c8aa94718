"""A cache outage degrades to answering from the database, never to an error."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.test import override_settings

from cqrs_core.projections import run_projection
from cqrs_core.queries import query_bus
from tests.bus_app.queries import GetAccountBalance

from .conftest import ALICE, BALANCES, deposit, open_account
from .test_cache import GetScopedBalance

pytestmark = pytest.mark.django_db(transaction=True)


def _unreachable_redis(ignore_exceptions: bool) -> dict:
    """django-redis pointed at a port where nothing listens, failing fast."""
    return {"default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:6399/0",
        "OPTIONS": {"IGNORE_EXCEPTIONS": ignore_exceptions, "SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }}


# Without IGNORE_EXCEPTIONS django-redis raises ConnectionInterrupted: the bus must catch it itself.
@pytest.mark.parametrize("ignore_exceptions", [True, False], ids=["ignore-exceptions", "raising-backend"])
def test_queries_answer_from_the_database_when_the_cache_is_down(
    ignore_exceptions: bool, caplog: pytest.LogCaptureFixture,
) -> None:
    account = open_account()
    position = deposit(account, "10")
    run_projection(BALANCES)
    # override_settings(CACHES=...) resets django.core.cache.caches through its setting_changed receiver.
    with override_settings(CACHES=_unreachable_redis(ignore_exceptions)):
        assert "6399" in str(cache._server)  # the override took effect, not the configured cache
        started = time.monotonic()
        answers = [query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE) for _ in range(2)]
        scoped = query_bus.ask(GetScopedBalance(account_id=account), actor=ALICE, min_position=position)
        elapsed = time.monotonic() - started
    assert [a.data["balance"] for a in answers] == [Decimal("10")] * 2
    assert [a.cached for a in answers] == [False, False] and answers[0].position == position
    assert scoped.data == Decimal("10") and not scoped.stale and not scoped.cached
    assert elapsed < 5
    if not ignore_exceptions:
        assert any(r.name == "ledgerline.queries" and r.levelname == "WARNING" for r in caplog.records)
