"""Every error answers the one problem shape, with a stable code, and writes nothing."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from .support import ACCOUNTS, account_url, assert_problem, post_json, written

pytestmark = pytest.mark.django_db


def test_a_missing_field_is_400_with_its_field_error(api: APIClient, account: str) -> None:
    response = api.post(account_url(account, "deposit"), {}, format="json")

    body = assert_problem(response, 400, "validation_failed")
    assert body["errors"] == {"amount": ["This field is required."]}
    assert body["retryable"] is False


def test_an_unknown_field_is_400_next_to_the_other_field_errors(api: APIClient, account: str) -> None:
    response = api.post(account_url(account, "deposit"), {"amount": "x", "amout": "5"}, format="json")

    body = assert_problem(response, 400, "validation_failed")
    assert body["errors"] == {"amount": ["A valid number is required."], "amout": ["Unknown field."]}


def test_an_unknown_field_alone_is_400(api: APIClient, account: str) -> None:
    response = api.post(account_url(account, "deposit"), {"amount": "5", "note": "hi"}, format="json")

    body = assert_problem(response, 400, "validation_failed")
    assert body["errors"] == {"note": ["Unknown field."]}


def test_a_body_that_is_not_an_object_is_400(api: APIClient, account: str) -> None:
    response = post_json(api, account_url(account, "deposit"), '["5"]')

    body = assert_problem(response, 400, "validation_failed")
    assert list(body["errors"]) == ["non_field_errors"]


def test_a_domain_validation_error_keeps_its_own_code(api: APIClient, account: str) -> None:
    response = api.post(account_url(account, "deposit"), {"amount": "-5"}, format="json")

    body = assert_problem(response, 400, "amount_not_positive")
    assert body["amount"] == "-5"


def test_another_users_account_is_404_for_commands_and_reads(bob_api: APIClient, account: str) -> None:
    deposit = bob_api.post(account_url(account, "deposit"), {"amount": "5"}, format="json")
    read = bob_api.get(account_url(account))

    assert_problem(deposit, 404, "account_not_found")
    assert_problem(read, 404, "account_not_found")


def test_an_account_that_does_not_exist_is_404(api: APIClient) -> None:
    assert_problem(api.get(account_url(str(uuid.uuid4()))), 404, "account_not_found")


def test_an_unknown_url_is_a_problem_too_inside_the_api(api: APIClient) -> None:
    assert api.get("/api/test-bus/nowhere/").status_code == 404


def test_withdrawing_more_than_the_balance_is_409_with_context(api: APIClient, account: str) -> None:
    response = api.post(account_url(account, "withdraw"), {"amount": "100.01"}, format="json")

    body = assert_problem(response, 409, "insufficient_funds")
    assert body["balance"] == "100.00" and body["amount"] == "100.01"


def test_no_credentials_is_401_with_a_challenge(anon_api: APIClient, account: str) -> None:
    response = anon_api.post(account_url(account, "deposit"), {"amount": "5"}, format="json")

    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_a_bad_token_is_401(anon_api: APIClient, account: str) -> None:
    anon_api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert_problem(anon_api.get(account_url(account)), 401, "authentication_failed")


def test_an_unsupported_content_type_is_415(api: APIClient, account: str) -> None:
    response = api.post(account_url(account, "deposit"), data="amount=5", content_type="text/plain")

    assert_problem(response, 415, "unsupported_media_type")


def test_form_data_is_accepted_like_json(api: APIClient, account: str) -> None:
    response = api.post(account_url(account, "deposit"), {"amount": "5.5"})

    assert response.status_code == 200
    assert response.json()["balance"] == "105.50"


def test_a_wrong_method_is_405(api: APIClient, account: str) -> None:
    assert_problem(api.get(account_url(account, "deposit")), 405, "method_not_allowed")


@pytest.mark.parametrize("raw", ['{"amount": "5"', "{'amount': '5'}", '{"amount": "5", "amount": "500"}', ""])
def test_malformed_json_is_400(api: APIClient, account: str, raw: str) -> None:
    response = post_json(api, account_url(account, "deposit"), raw)

    if raw:
        assert_problem(response, 400, "malformed_request")
    else:  # an empty body is no body: the amount is missing
        assert_problem(response, 400, "validation_failed")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_400_as_json_numbers(api: APIClient, account: str, number: str) -> None:
    response = post_json(api, account_url(account, "deposit"), f'{{"amount": {number}}}')

    body = assert_problem(response, 400, "malformed_request")
    assert number.lstrip("-") in body["detail"]


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "inf", "sNaN"])
def test_nan_and_infinity_are_400_as_strings(api: APIClient, account: str, text: str) -> None:
    response = api.post(account_url(account, "deposit"), {"amount": text}, format="json")

    body = assert_problem(response, 400, "validation_failed")
    assert list(body["errors"]) == ["amount"]


def test_the_command_throttle_answers_429_with_retry_after(api: APIClient, bob_api: APIClient, account: str,
                                                           settings: Any) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"commands": "2/min", "auth": "2/min"}}
    cache.clear()  # forget the commands that set up the account
    url = account_url(account, "deposit")
    assert [api.post(url, {"amount": "1"}, format="json").status_code for _ in range(2)] == [200, 200]

    response = api.post(url, {"amount": "1"}, format="json")

    body = assert_problem(response, 429, "throttled")
    assert body["retryable"] is True
    assert 0 < int(response["Retry-After"]) <= 60
    assert api.get(account_url(account)).json()["balance"] == "102.00"
    # Per user: Bob still has his own budget.
    assert bob_api.post(ACCOUNTS, {}, format="json").status_code == 201


Request = Callable[[APIClient, APIClient, APIClient, str], Any]
_FAILING_REQUESTS: dict[str, Request] = {
    "validation": lambda api, bob, anon, acc: api.post(account_url(acc, "deposit"), {"amount": "abc"}, format="json"),
    "unknown field": lambda api, bob, anon, acc: api.post(account_url(acc, "deposit"), {"amount": "1", "x": 1},
                                                          format="json"),
    "domain validation": lambda api, bob, anon, acc: api.post(account_url(acc, "deposit"), {"amount": "0"},
                                                              format="json"),
    "not yours": lambda api, bob, anon, acc: bob.post(account_url(acc, "withdraw"), {"amount": "1"}, format="json"),
    "insufficient funds": lambda api, bob, anon, acc: api.post(account_url(acc, "withdraw"), {"amount": "1000"},
                                                               format="json"),
    "stale If-Match": lambda api, bob, anon, acc: api.post(account_url(acc, "withdraw"), {"amount": "1"},
                                                           format="json", headers={"If-Match": "1"}),
    "no auth": lambda api, bob, anon, acc: anon.post(ACCOUNTS, {}, format="json"),
    "malformed": lambda api, bob, anon, acc: post_json(api, ACCOUNTS, "{"),
    "NaN": lambda api, bob, anon, acc: post_json(api, account_url(acc, "deposit"), '{"amount": NaN}'),
    "too precise": lambda api, bob, anon, acc: post_json(api, account_url(acc, "deposit"),
                                                         '{"amount": 0.1000000000000000055511151231257827}'),
    "media type": lambda api, bob, anon, acc: api.post(ACCOUNTS, data="x", content_type="text/plain"),
    "open twice": lambda api, bob, anon, acc: api.post(ACCOUNTS, {"expected_version": 1}, format="json"),
}


@pytest.mark.parametrize("name", list(_FAILING_REQUESTS))
def test_nothing_is_written_on_error(name: str, api: APIClient, bob_api: APIClient, anon_api: APIClient,
                                     account: str) -> None:
    before = written()

    response = _FAILING_REQUESTS[name](api, bob_api, anon_api, account)

    assert 400 <= response.status_code < 500
    assert response["Content-Type"] == "application/problem+json"
    assert written() == before
    assert api.get(account_url(account)).json()["balance"] == "100.00"
