"""HTTP tests of the portfolio endpoints: status, error code, nothing written on error, owners only."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from rest_framework.test import APIClient

from cqrs_core.store import read_stream
from tests.api.support import assert_problem, post_json, written

pytestmark = pytest.mark.django_db(transaction=True)

DEPOSITS, WITHDRAWALS, PORTFOLIO = "/api/portfolio/deposits/", "/api/portfolio/withdrawals/", "/api/portfolio/"


def deposit(api: APIClient, amount: str = "1000.00", **headers: str) -> dict[str, Any]:
    response = api.post(DEPOSITS, {"amount": amount}, format="json", headers=headers)
    assert response.status_code == 201, response.content
    return response.json()


def read_portfolio(api: APIClient, min_position: int | None = None, **params: Any) -> dict[str, Any]:
    if min_position is not None:
        params["min_position"] = min_position
    response = api.get(PORTFOLIO, params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["stale"] is False
    return body["data"]


def test_deposit_answers_its_position_and_the_portfolio_reads_it(api: APIClient, alice: AbstractUser) -> None:
    body = deposit(api, "1000.10")
    assert body["cash"] == "1000.10" and isinstance(body["position"], int)
    data = read_portfolio(api, body["position"])
    assert data["cash"] == "1000.100000000000000000" and data["user_id"] == alice.pk
    assert data["total_value"] == data["cash"] and data["allocation"] == {"USD": "100.0000"}


def test_an_unused_portfolio_reads_empty(api: APIClient) -> None:
    data = read_portfolio(api)
    assert data["cash"] == "0" and data["positions"] == [] and data["max_position_usd"] == "100000"


def test_withdrawal_within_cash(api: APIClient) -> None:
    deposit(api, "100")
    response = api.post(WITHDRAWALS, {"amount": "40.5"}, format="json")
    assert response.status_code == 201 and response.json()["cash"] == "59.5"
    assert read_portfolio(api, response.json()["position"])["cash"] == "59.500000000000000000"


def test_withdrawal_below_zero_is_insufficient_funds_and_writes_nothing(api: APIClient) -> None:
    deposit(api, "100")
    before = written()
    assert_problem(api.post(WITHDRAWALS, {"amount": "100.01"}, format="json"), 409, "insufficient_funds")
    assert written() == before


@pytest.mark.parametrize("raw", [
    '{"amount": NaN}', '{"amount": Infinity}', '{"amount": "NaN"}', '{"amount": "-Infinity"}',
    '{"amount": "0.0000000000000000001"}', '{"amount": 12345678901.5}', '{"amount": "1e30"}', '{"amount": true}',
    '{"amount": "12", "note": "x"}', '{}',
])
def test_bad_money_and_unknown_fields_are_400_and_write_nothing(api: APIClient, raw: str) -> None:
    before = written()
    response = post_json(api, DEPOSITS, raw)
    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("validation_failed", "malformed_request")
    assert written() == before


def test_unknown_field_names_the_field(api: APIClient) -> None:
    body = assert_problem(api.post(DEPOSITS, {"amount": "1", "user_id": 2}, format="json"), 400, "validation_failed")
    assert body["errors"] == {"user_id": ["Unknown field."]}


def test_non_positive_amounts_are_refused(api: APIClient) -> None:
    before = written()
    assert_problem(api.post(DEPOSITS, {"amount": "0"}, format="json"), 400, "amount_not_positive")
    assert written() == before


def test_money_is_exact_to_eighteen_places(api: APIClient) -> None:
    body = deposit(api, "0.000000000000000001")
    deposit(api, "9999999999.999999999999999999")
    assert read_portfolio(api, body["position"] + 1)["cash"] == "10000000000.000000000000000000"


def test_idempotency_key_replays_the_deposit(api: APIClient) -> None:
    first = deposit(api, "5", **{"Idempotency-Key": "dep-1"})
    again = api.post(DEPOSITS, {"amount": "5"}, format="json", headers={"Idempotency-Key": "dep-1"})
    assert again.json()["position"] == first["position"] and again["Idempotent-Replayed"] == "true"
    assert read_portfolio(api, first["position"])["cash"] == "5.000000000000000000"


def test_another_users_portfolio_is_404_for_users_and_readable_by_staff(
        api: APIClient, bob_api: APIClient, staff_api: APIClient, alice: AbstractUser) -> None:
    position = deposit(api, "10")["position"]
    assert_problem(bob_api.get(PORTFOLIO, {"user_id": alice.pk}), 404, "portfolio_not_found")
    assert read_portfolio(staff_api, position, user_id=alice.pk)["cash"] == "10.000000000000000000"
    assert_problem(staff_api.get(PORTFOLIO, {"user_id": 987654}), 404, "portfolio_not_found")
    assert_problem(api.get(PORTFOLIO, {"user_id": "x"}), 400, "validation_failed")


def test_cached_portfolio_is_never_stale_after_the_owners_command(api: APIClient) -> None:
    first = deposit(api, "1")
    assert read_portfolio(api, first["position"])["cash"] == "1.000000000000000000"
    assert api.get(PORTFOLIO).json()["data"]["cash"] == "1.000000000000000000"  # now cached
    second = deposit(api, "2")
    assert read_portfolio(api, second["position"])["cash"] == "3.000000000000000000"


def test_anonymous_requests_are_401(client: Any) -> None:
    assert client.get(PORTFOLIO).status_code == 401
    assert client.post(DEPOSITS, {"amount": "1"}, content_type="application/json").status_code == 401


def test_risk_limits_by_an_operator(api: APIClient, staff_api: APIClient, alice: AbstractUser) -> None:
    response = staff_api.put(f"/api/portfolio/{alice.pk}/risk-limits/", {"max_position_usd": "2500"}, format="json")
    assert response.status_code == 200, response.content
    assert read_portfolio(api, response.json()["position"])["max_position_usd"] == "2500.000000000000000000"
    assert [e.event_type for e in read_stream(f"portfolio-{alice.pk}")] == [
        "portfolio.PortfolioOpened", "portfolio.RiskLimitsSet"]


def test_risk_limits_are_forbidden_to_users_even_their_own(api: APIClient, bob_api: APIClient,
                                                           alice: AbstractUser) -> None:
    before = written()
    for client in (api, bob_api):
        response = client.put(f"/api/portfolio/{alice.pk}/risk-limits/", {"max_position_usd": "1"}, format="json")
        assert_problem(response, 403, "operators_only")
    assert written() == before


def test_risk_limits_of_an_unknown_user_are_404_and_unknown_fields_400(staff_api: APIClient) -> None:
    before = written()
    assert_problem(staff_api.put("/api/portfolio/987654/risk-limits/", {"max_position_usd": "1"}, format="json"),
                   404, "portfolio_not_found")
    response = staff_api.put("/api/portfolio/987654/risk-limits/", {"max_position_usd": "1", "x": 1}, format="json")
    assert_problem(response, 400, "validation_failed")
    assert written() == before


def test_commands_are_throttled(api: APIClient, settings: Any) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"commands": "2/min", "auth": "2/min"}}
    deposit(api, "1")
    deposit(api, "1")
    before = written()
    assert_problem(api.post(DEPOSITS, {"amount": "1"}, format="json"), 429, "throttled")
    assert written() == before
    assert Decimal(api.get(PORTFOLIO).json()["data"]["cash"]) >= 0  # reads are not throttled
