"""Fixtures of the market tests: candles and an authenticated API client."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.contrib.auth.models import AbstractUser
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from market.events import CandleData

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """Throttles and cached answers live in the cache; each test starts with none.

    Celery runs eagerly here through the suite-wide ``eager_wakeups`` fixture (tests/conftest.py).
    """
    cache.clear()
    yield
    cache.clear()


def candle(open_time: dt.datetime, open_: str, high: str, low: str, close: str, volume: str) -> CandleData:
    return CandleData(open_time=open_time, open=Decimal(open_), high=Decimal(high), low=Decimal(low),
                      close=Decimal(close), volume=Decimal(volume))


def flat(open_time: dt.datetime, price: str, volume: str = "1") -> CandleData:
    """A candle that opens, closes and trades at one price."""
    return candle(open_time, price, price, price, price, volume)


@pytest.fixture
def user(django_user_model: type[AbstractUser]) -> AbstractUser:
    return django_user_model.objects.create_user("trader", password="trader-password")


@pytest.fixture
def api(user: AbstractUser) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client
