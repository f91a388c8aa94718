"""Fixtures of the HTTP tests: two users with token-authenticated clients, and fresh throttles."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import AbstractUser
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from .support import open_account


@pytest.fixture(autouse=True)
def _fresh_throttles() -> Iterator[None]:
    """Throttle counters live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


def _token_client(user: AbstractUser) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def alice(django_user_model: type[AbstractUser]) -> AbstractUser:
    return django_user_model.objects.create_user("alice", password="alice-password")


@pytest.fixture
def bob(django_user_model: type[AbstractUser]) -> AbstractUser:
    return django_user_model.objects.create_user("bob", password="bob-password")


@pytest.fixture
def api(alice: AbstractUser) -> APIClient:
    """Alice's client, authenticated with a real token header."""
    return _token_client(alice)


@pytest.fixture
def bob_api(bob: AbstractUser) -> APIClient:
    return _token_client(bob)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


@pytest.fixture
def account(api: APIClient) -> str:
    """An account of Alice's holding 100.00."""
    account_id = open_account(api)
    response = api.post(f"/api/test-bus/accounts/{account_id}/deposit/", {"amount": "100.00"}, format="json")
    assert response.status_code == 200, response.content
    return account_id
