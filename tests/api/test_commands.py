"""Command endpoints through the shared plumbing: results, positions, idempotency, preconditions."""
from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from cqrs_core.models import StoredEvent

from .support import ACCOUNTS, account_url, assert_problem, open_account, written

pytestmark = pytest.mark.django_db


def test_opening_an_account_answers_201_with_its_position_in_body_and_header(api: APIClient, alice) -> None:
    response = api.post(ACCOUNTS, {"currency": "EUR"}, format="json")

    assert response.status_code == 201
    body = response.json()
    event = StoredEvent.objects.get(stream_id=f"bus_app.account-{body['account_id']}")
    assert body["position"] == event.position
    assert response["X-Event-Position"] == str(event.position)
    assert body["stream_version"] == 1 and response["ETag"] == '"1"'
    assert body["command_id"] == str(event.command_id)
    assert event.actor_id == alice.pk
    assert response["Location"] == account_url(body["account_id"])
    assert "Idempotent-Replayed" not in response


def test_deposit_and_withdraw_answer_200_with_the_new_balance(api: APIClient, account: str) -> None:
    withdrawn = api.post(account_url(account, "withdraw"), {"amount": "30.25"}, format="json")

    assert withdrawn.status_code == 200
    assert Decimal(withdrawn.json()["balance"]) == Decimal("69.75")
    assert withdrawn.json()["stream_version"] == 3
    shown = api.get(account_url(account))
    assert shown.status_code == 200
    assert shown.json()["balance"] == "69.75"
    assert shown.json()["position"] == withdrawn.json()["position"]
    assert shown["ETag"] == '"3"'


def test_same_idempotency_key_and_body_replays_the_first_response(api: APIClient, account: str) -> None:
    url, key = account_url(account, "deposit"), {"Idempotency-Key": "deposit-1"}
    first = api.post(url, {"amount": "5"}, format="json", headers=key)
    before = written()

    again = api.post(url, {"amount": "5"}, format="json", headers=key)

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again["X-Event-Position"] == first["X-Event-Position"]
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert written() == before
    assert StoredEvent.objects.filter(event_type="bus_app.FundsDeposited", data__amount="5").count() == 1
    assert api.get(account_url(account)).json()["balance"] == "105.00"


def test_a_retried_open_creates_one_account(api: APIClient) -> None:
    key = {"Idempotency-Key": "open-my-account"}
    first = api.post(ACCOUNTS, {"currency": "EUR"}, format="json", headers=key)
    again = api.post(ACCOUNTS, {"currency": "EUR"}, format="json", headers=key)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert StoredEvent.objects.filter(event_type="bus_app.AccountOpened").count() == 1


def test_the_same_key_from_another_user_is_another_command(api: APIClient, bob_api: APIClient) -> None:
    key = {"Idempotency-Key": "shared-key"}
    alices = api.post(ACCOUNTS, {"currency": "EUR"}, format="json", headers=key)
    bobs = bob_api.post(ACCOUNTS, {"currency": "EUR"}, format="json", headers=key)

    assert alices.status_code == bobs.status_code == 201
    assert alices.json()["account_id"] != bobs.json()["account_id"]
    assert "Idempotent-Replayed" not in bobs


def test_reusing_an_idempotency_key_with_another_body_is_422(api: APIClient, account: str) -> None:
    url, key = account_url(account, "deposit"), {"Idempotency-Key": "deposit-1"}
    api.post(url, {"amount": "5"}, format="json", headers=key)
    before = written()

    response = api.post(url, {"amount": "6"}, format="json", headers=key)

    assert_problem(response, 422, "idempotency_key_reused")
    assert written() == before


def test_reusing_an_idempotency_key_on_another_endpoint_is_422(api: APIClient, account: str) -> None:
    key = {"Idempotency-Key": "k"}
    api.post(account_url(account, "deposit"), {"amount": "5"}, format="json", headers=key)

    response = api.post(account_url(account, "withdraw"), {"amount": "5"}, format="json", headers=key)

    assert_problem(response, 422, "idempotency_key_reused")


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
def test_an_empty_or_overlong_idempotency_key_is_400(api: APIClient, account: str, key: str) -> None:
    before = written()

    response = api.post(account_url(account, "deposit"), {"amount": "5"}, format="json",
                        headers={"Idempotency-Key": key})

    body = assert_problem(response, 400, "validation_failed")
    assert list(body["errors"]) == ["Idempotency-Key"]
    assert written() == before


def test_a_255_character_idempotency_key_is_accepted(api: APIClient, account: str) -> None:
    response = api.post(account_url(account, "deposit"), {"amount": "5"}, format="json",
                        headers={"Idempotency-Key": "k" * 255})

    assert response.status_code == 200


@pytest.mark.parametrize("if_match", ['"2"', "2", 'W/"2"'])
def test_if_match_at_the_current_version_succeeds(api: APIClient, account: str, if_match: str) -> None:
    response = api.post(account_url(account, "deposit"), {"amount": "1"}, format="json",
                        headers={"If-Match": if_match})

    assert response.status_code == 200
    assert response["ETag"] == '"3"'


def test_if_match_at_an_old_version_is_412_and_writes_nothing(api: APIClient, account: str) -> None:
    before = written()

    response = api.post(account_url(account, "withdraw"), {"amount": "1"}, format="json", headers={"If-Match": '"1"'})

    body = assert_problem(response, 412, "precondition_failed")
    assert body["expected_version"] == 1 and body["current_version"] == 2
    assert written() == before


def test_expected_version_in_the_body_is_a_precondition_too(api: APIClient, account: str) -> None:
    stale = api.post(account_url(account, "withdraw"), {"amount": "1", "expected_version": 1}, format="json")
    fresh = api.post(account_url(account, "withdraw"), {"amount": "1", "expected_version": 2}, format="json")

    assert_problem(stale, 412, "precondition_failed")
    assert fresh.status_code == 200


def test_if_match_and_expected_version_that_disagree_are_400(api: APIClient, account: str) -> None:
    response = api.post(account_url(account, "withdraw"), {"amount": "1", "expected_version": 2}, format="json",
                        headers={"If-Match": '"1"'})

    body = assert_problem(response, 400, "validation_failed")
    assert "expected_version" in body["errors"]


@pytest.mark.parametrize("if_match", ["abc", '"1", "2"', '"-1"'])
def test_an_unreadable_if_match_is_400(api: APIClient, account: str, if_match: str) -> None:
    response = api.post(account_url(account, "deposit"), {"amount": "1"}, format="json", headers={"If-Match": if_match})

    body = assert_problem(response, 400, "validation_failed")
    assert list(body["errors"]) == ["If-Match"]


def test_opening_expects_a_new_stream_when_asked(api: APIClient) -> None:
    new = api.post(ACCOUNTS, {"currency": "EUR", "expected_version": 0}, format="json")
    existing = api.post(ACCOUNTS, {"currency": "EUR", "expected_version": 1}, format="json")

    assert new.status_code == 201
    assert_problem(existing, 412, "precondition_failed")
