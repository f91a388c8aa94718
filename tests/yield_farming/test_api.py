"""HTTP tests of the yield endpoints: each error code, nothing written on error, owners only, staff see all."""
from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.api.support import assert_problem, written

pytestmark = [pytest.mark.django_db(transaction=True, reset_sequences=True), pytest.mark.usefixtures("catalogue")]

STRATEGIES, POSITIONS, PROTOCOLS = "/api/yield/strategies/", "/api/yield/positions/", "/api/yield/protocols/"


def fund(api: APIClient, amount: str = "10000") -> None:
    assert api.post("/api/portfolio/deposits/", {"amount": amount}, format="json").status_code == 201


def execute(api: APIClient, **fields: Any) -> Any:
    body = {"protocols": "any", "amount": "5000", "risk_tolerance": "moderate", **fields}
    return api.post(STRATEGIES, body, format="json")


def test_a_strategy_answers_202_with_its_location_and_opens_positions(api: APIClient) -> None:
    fund(api)
    response = execute(api)
    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == f"{STRATEGIES}{body['strategy_id']}/"
    assert (body["status"], body["reserved"], body["cash"]) == ("requested", "5000", "5000")
    assert isinstance(body["position"], int)

    status = api.get(response["Location"], {"min_position": body["position"]}).json()["data"]
    assert (status["status"], status["outcome"], status["allocated"]) == (
        "completed", "positions_opened", "5000.000000000000000000")
    assert [e["event"] for e in status["timeline"]] == ["SagaStarted", *["StepCompleted"] * 4, "SagaCompleted"]
    assert [e["step"] for e in status["timeline"][1:5]] == [
        "hold_funds", "analyse_opportunities", "assess_risks", "execute_positions"]
    assert sorted(p["protocol"] for p in status["positions"]) == ["mid-c", "safe-a"]

    positions = api.get(POSITIONS).json()["data"]
    assert positions["count"] == 2
    assert [(p["status"], p["days"], p["accrued_yield"]) for p in positions["results"]] == [
        ("open", 0, "0.000000000000000000")] * 2  # opened today: no whole day accrued yet
    portfolio = api.get("/api/portfolio/").json()["data"]
    assert (portfolio["cash"], portfolio["reserved"], portfolio["yield_principal"]) == (
        "5000.000000000000000000", "0.000000000000000000", "5000.000000000000000000")
    assert portfolio["total_value"] == "10000.000000000000000000"
    assert portfolio["allocation"] == {"USD": "50.0000", "YIELD": "50.0000"}


def test_an_idempotency_key_answers_the_first_strategy_again(api: APIClient) -> None:
    fund(api)
    first = api.post(STRATEGIES, {"protocols": "any", "amount": "2000", "risk_tolerance": "moderate"},
                     format="json", headers={"Idempotency-Key": "farm-1"})
    before = written()
    again = api.post(STRATEGIES, {"protocols": "any", "amount": "2000", "risk_tolerance": "moderate"},
                     format="json", headers={"Idempotency-Key": "farm-1"})
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.json()["strategy_id"] == first.json()["strategy_id"] and written() == before
    other = api.post(STRATEGIES, {"protocols": "any", "amount": "3000", "risk_tolerance": "moderate"},
                     format="json", headers={"Idempotency-Key": "farm-1"})
    assert_problem(other, 422, "idempotency_key_reused")


@pytest.mark.parametrize(("fields", "status", "code"), [
    ({"amount": "999.99"}, 400, "amount_too_low"),
    ({"amount": "20000"}, 409, "insufficient_funds"),
    ({"protocols": ["safe-a", "no-such"]}, 400, "unknown_protocol"),
    ({"protocols": []}, 400, "validation_failed"),
    ({"protocols": "all"}, 400, "validation_failed"),
    ({"risk_tolerance": "reckless"}, 400, "validation_failed"),
    ({"amount": "lots"}, 400, "validation_failed"),
    ({"leverage": "10"}, 400, "validation_failed"),
])
def test_each_refusal_has_its_code_and_writes_nothing(api: APIClient, fields: dict, status: int, code: str) -> None:
    fund(api)
    before = written()
    body = assert_problem(execute(api, **fields), status, code)
    assert written() == before
    if "leverage" in fields:
        assert body["errors"] == {"leverage": ["Unknown field."]}


def test_another_users_strategy_is_not_found_and_staff_see_it(api: APIClient, bob_api: APIClient,
                                                               staff_api: APIClient) -> None:
    fund(api)
    location = execute(api)["Location"]
    assert_problem(bob_api.get(location), 404, "strategy_not_found")
    assert bob_api.get(POSITIONS).json()["data"]["count"] == 0
    assert staff_api.get(location).status_code == 200
    assert staff_api.get(POSITIONS).json()["data"]["count"] == 2


def test_another_users_positions_are_not_found(api: APIClient, bob_api: APIClient, bob) -> None:  # type: ignore[no-untyped-def]
    assert_problem(api.get(POSITIONS, {"user_id": bob.pk}), 404, "portfolio_not_found")
    assert_problem(api.get(POSITIONS, {"colour": "red"}), 400, "validation_failed")


def test_the_protocol_list_filters(api: APIClient) -> None:
    def slugs(**params: Any) -> list[str]:
        response = api.get(PROTOCOLS, params)
        assert response.status_code == 200, response.content
        return [p["slug"] for p in response.json()["data"]["results"]]

    assert slugs() == ["mid-c", "safe-a", "safe-b", "wild-d"]
    assert slugs(chain="arbitrum") == ["mid-c"]
    assert slugs(audited="false") == ["wild-d"]
    assert slugs(max_risk=2) == ["safe-a", "safe-b"]
    assert slugs(asset="USDC", max_risk=5, audited="true") == ["mid-c", "safe-a", "safe-b"]
    assert_problem(api.get(PROTOCOLS, {"max_risk": 11}), 400, "validation_failed")
    assert_problem(api.get(PROTOCOLS, {"sort": "apy"}), 400, "validation_failed")


def test_operators_update_a_protocol_others_get_403(api: APIClient, staff_api: APIClient) -> None:
    before = written()
    assert_problem(api.put(f"{PROTOCOLS}safe-a/", {"apy": "6"}, format="json"), 403, "operators_only")
    assert written() == before
    response = staff_api.put(f"{PROTOCOLS}safe-a/", {"apy": "6.10", "audited": False}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["apy"], response.json()["audited"]) == ("6.10", False)
    row = api.get(PROTOCOLS, {"min_position": response.json()["position"], "chain": "ethereum"}).json()["data"]
    assert [(p["apy"], p["audited"]) for p in row["results"] if p["slug"] == "safe-a"] == [
        ("6.100000000000000000", False)]


@pytest.mark.parametrize(("slug", "body", "status", "code"), [
    ("nope", {"apy": "1"}, 404, "protocol_not_found"),
    ("safe-a", {}, 400, "validation_failed"),
    ("safe-a", {"risk_score": 11}, 400, "validation_failed"),
    ("safe-a", {"apy": "-1"}, 400, "invalid_protocol"),
    ("safe-a", {"apy": "1", "owner": "me"}, 400, "validation_failed"),
])
def test_protocol_update_refusals(staff_api: APIClient, slug: str, body: dict, status: int, code: str) -> None:
    before = written()
    assert_problem(staff_api.put(f"{PROTOCOLS}{slug}/", body, format="json"), status, code)
    assert written() == before


def test_anonymous_callers_are_refused(anon_api: APIClient) -> None:
    for response in (anon_api.get(PROTOCOLS), anon_api.get(POSITIONS),
                     anon_api.post(STRATEGIES, {}, format="json")):
        assert response.status_code == 401
