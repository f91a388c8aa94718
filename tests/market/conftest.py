"""Fixtures of the market tests: projections applied inline, candles, and API clients."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.contrib.auth.models import AbstractUser
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.celery import app as celery_app
from market.events import CandleData

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def eager_wakeups() -> Iterator[None]:
    """Wake-ups run inline on commit in every mode: with a real broker no worker would take them."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    cache.clear()
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = before
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
