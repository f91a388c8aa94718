"""Fixtures of the portfolio and trading tests: a fixed market (tasks run eagerly by tests/conftest.py), users and their API clients.

Users, token clients and fresh throttles (the cache cleared around each test) come from the API tests.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import AbstractUser
from rest_framework.test import APIClient

from portfolio import market
from portfolio.market import MarketSnapshot
from tests.api.conftest import _fresh_throttles, _token_client, alice, api, bob, bob_api  # noqa: F401  (fixtures)

from .support import MARKET


@pytest.fixture(autouse=True)
def fixed_market(monkeypatch: pytest.MonkeyPatch) -> dict[str, Decimal]:
    """The market as the handlers and queries see it; tests change prices through the returned dict."""
    prices = dict(MARKET.prices)
    monkeypatch.setattr(market, "snapshot", lambda: MarketSnapshot(MARKET.pairs, dict(prices)))
    return prices


@pytest.fixture
def operator(django_user_model: type[AbstractUser]) -> AbstractUser:
    return django_user_model.objects.create_user("olive", password="olive-password", is_staff=True)


@pytest.fixture
def staff_api(operator: AbstractUser) -> APIClient:
    return _token_client(operator)
