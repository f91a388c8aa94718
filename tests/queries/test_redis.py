"""Services run: cached answers really land in Redis, with the TTL of their policy."""
from __future__ import annotations

import pytest
from django.conf import settings

from cqrs_core.projections import run_projection
from cqrs_core.queries import query_bus
from tests.bus_app.queries import GetAccountBalance

from .conftest import ALICE, BALANCES, deposit, open_account

REDIS_BACKEND = "django_redis.cache.RedisCache"


@pytest.mark.services
@pytest.mark.skipif(settings.CACHES["default"]["BACKEND"] != REDIS_BACKEND, reason="needs CACHE_URL=redis://...")
@pytest.mark.django_db(transaction=True)
def test_a_cached_answer_is_stored_in_redis_with_its_ttl() -> None:
    import redis

    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    account = open_account()
    deposit(account, "10")
    run_projection(BALANCES)
    pattern = f"*cqrs:query:{GetAccountBalance.query_type}:*"
    before = set(client.scan_iter(match=pattern, count=1000))
    query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE)
    added = set(client.scan_iter(match=pattern, count=1000)) - before
    assert len(added) == 1
    assert 0 < client.ttl(added.pop()) <= 300
    assert query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE).cached
