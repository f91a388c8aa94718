"""Concurrent retries with one Idempotency-Key give one set of events and one answer (DESIGN 6)."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from cqrs_core.models import StoredEvent

from .support import ACCOUNTS, account_url

THREADS = 4


def _concurrently(token: str, send: Callable[[APIClient], Any]) -> list[Any]:
    """Run ``send`` in THREADS threads at once, each with its own client and connection."""
    barrier, responses = threading.Barrier(THREADS), [None] * THREADS

    def run(index: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait(timeout=10)
            responses[index] = send(client)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_a_deposit_store_one_deposit(api: APIClient, alice: Any, account: str) -> None:
    key = {"Idempotency-Key": "deposit-once"}

    responses = _concurrently(Token.objects.get(user=alice).key, lambda c: c.post(
        account_url(account, "deposit"), {"amount": "5"}, format="json", headers=key))

    assert [r.status_code for r in responses] == [200] * THREADS, [r.content for r in responses]
    assert len({r.content for r in responses}) == 1
    assert sum(r.has_header("Idempotent-Replayed") for r in responses) == THREADS - 1
    assert StoredEvent.objects.filter(event_type="bus_app.FundsDeposited").count() == 2  # the fixture's + this one
    assert api.get(account_url(account)).json()["balance"] == "105.00"


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_an_open_create_one_account(api: APIClient, alice: Any) -> None:
    key = {"Idempotency-Key": "open-once"}

    responses = _concurrently(Token.objects.get(user=alice).key,
                              lambda c: c.post(ACCOUNTS, {"currency": "EUR"}, format="json", headers=key))

    assert [r.status_code for r in responses] == [201] * THREADS, [r.content for r in responses]
    assert len({r.content for r in responses}) == 1
    assert StoredEvent.objects.filter(event_type="bus_app.AccountOpened").count() == 1
