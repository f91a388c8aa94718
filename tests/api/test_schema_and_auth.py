"""The OpenAPI schema and its offline docs, and token sign-in."""
from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.test import Client
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from .support import ACCOUNTS, assert_problem

pytestmark = pytest.mark.django_db


def test_the_schema_is_valid_openapi_with_the_problem_component(anon_api: APIClient) -> None:
    response = anon_api.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert set(schema["components"]["schemas"]["Problem"]["required"]) >= {"code", "status", "retryable", "type"}
    withdraw = schema["paths"]["/api/test-bus/accounts/{account_id}/withdraw/"]["post"]
    assert withdraw["responses"]["409"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"}
    assert {"Idempotency-Key", "If-Match"} <= {p["name"] for p in withdraw["parameters"]}
    assert "X-Event-Position" in withdraw["responses"]["200"]["headers"]


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_the_docs_use_only_local_assets(url: str) -> None:
    response = Client().get(url)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "https://" not in page and "http://" not in page
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets, "the page loads no assets at all"
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")) is not None, f"{asset} is not a shipped static file"


def test_a_token_from_sign_in_authenticates_commands(django_user_model: Any) -> None:
    django_user_model.objects.create_user("carol", password="carol-password")
    client = APIClient()

    token = client.post("/api/auth/token/", {"username": "carol", "password": "carol-password"}, format="json")

    assert token.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    assert client.post(ACCOUNTS, {}, format="json").status_code == 201


def test_a_wrong_password_is_400(django_user_model: Any) -> None:
    django_user_model.objects.create_user("carol", password="carol-password")

    response = APIClient().post("/api/auth/token/", {"username": "carol", "password": "guess"}, format="json")

    body = assert_problem(response, 400, "validation_failed")
    assert "non_field_errors" in body["errors"]


def test_sign_in_is_throttled_per_address(settings: Any, django_user_model: Any) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"commands": "100/min", "auth": "3/min"}}
    cache.clear()
    django_user_model.objects.create_user("carol", password="carol-password")
    guesses = [APIClient().post("/api/auth/token/", {"username": "carol", "password": f"guess{i}"}, format="json")
               for i in range(3)]
    assert [g.status_code for g in guesses] == [400, 400, 400]

    right = APIClient().post("/api/auth/token/", {"username": "carol", "password": "carol-password"}, format="json")

    assert_problem(right, 429, "throttled")
    assert "Retry-After" in right
