"""Helpers of the HTTP tests."""
from __future__ import annotations

import json
from typing import Any

from rest_framework.test import APIClient

from cqrs_core.models import CommandRecord, StoredEvent

ACCOUNTS = "/api/test-bus/accounts/"


def account_url(account_id: str, action: str = "") -> str:
    return f"{ACCOUNTS}{account_id}/" + (f"{action}/" if action else "")


def open_account(api: APIClient, **headers: str) -> str:
    response = api.post(ACCOUNTS, {"currency": "EUR"}, format="json", headers=headers)
    assert response.status_code == 201, response.content
    return str(response.json()["account_id"])


def post_json(api: APIClient, url: str, raw: str, **headers: str) -> Any:
    """POST a raw JSON text, so the test controls exactly how numbers are written."""
    return api.post(url, data=raw, content_type="application/json", headers=headers)


def written() -> tuple[int, int]:
    """How many events and command records are stored: an error must change neither."""
    return StoredEvent.objects.count(), CommandRecord.objects.count()


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is a problem of this status and code, in the one error shape; returns the body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.content)
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"] == f"urn:ledgerline:problem:{code}"
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["retryable"], bool)
    return body
