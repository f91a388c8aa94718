"""HTTP tests of the rebalance endpoints: plan, execute, read; each error code; owners only; nothing written."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from rest_framework.test import APIClient

from cqrs_core.store import read_stream
from tests.api.support import assert_problem, post_json, written

# Fresh positions per test: a flushed store otherwise starts above 1, a hole the gap-free reader
# only passes once every older transaction on the server has ended (slow beside other suites).
pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True)

REBALANCE = "/api/portfolio/rebalance/"


def funded(api: APIClient, cash: str = "10000", btc: str = "0.1") -> None:
    assert api.post("/api/portfolio/deposits/", {"amount": cash}, format="json").status_code == 201
    trade = {"pair": "BTC/USD", "side": "buy", "amount": btc, "price": "50000"}
    assert api.post("/api/trading/trades/", trade, format="json").status_code == 201


def plan(api: APIClient, targets: dict[str, str], *, headers: dict[str, str] | None = None, **extra: Any) -> Any:
    return api.post(REBALANCE, {"targets": targets, **extra}, format="json", headers=headers or {})


def read(api: APIClient, rebalance_id: str, position: int) -> dict[str, Any]:
    response = api.get(f"{REBALANCE}{rebalance_id}/", {"min_position": position})
    assert response.status_code == 200, response.content
    assert response.json()["stale"] is False
    return response.json()["data"]


def test_a_plan_is_201_with_the_plan_and_reads_back_as_planned(api: APIClient, alice: AbstractUser) -> None:
    funded(api)
    response = plan(api, {"ETH": "50", "USD": "50"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "planned" and isinstance(body["position"], int)
    assert response["Location"] == f"{REBALANCE}{body['rebalance_id']}/"
    assert [(t["side"], t["pair"]) for t in body["plan"]["trades"]] == [("sell", "BTC/USD"), ("buy", "ETH/USD")]
    estimates = {k: Decimal(body["plan"][k]) for k in ("estimated_fees", "estimated_slippage", "estimated_cost")}
    notional = sum(Decimal(t["notional"]) for t in body["plan"]["trades"])
    assert estimates["estimated_fees"] == notional / 1000 and estimates["estimated_slippage"] == notional / 100
    assert estimates["estimated_cost"] == estimates["estimated_fees"] + estimates["estimated_slippage"]

    data = read(api, body["rebalance_id"], body["position"])
    assert (data["status"], data["user_id"], data["plan"]) == ("planned", alice.pk, body["plan"])
    assert data["targets"] == {"ETH": "50", "USD": "50"} and data["timeline"] == []
    assert [e.event_type for e in read_stream(f"portfolio-{alice.pk}")][-1] == "portfolio.PortfolioRebalancePlanned"


def test_execute_true_answers_202_and_the_rebalance_reads_completed_with_its_timeline(api: APIClient) -> None:
    funded(api)
    response = plan(api, {"ETH": "50", "USD": "50"}, execute=True)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "executing" and response["Location"].endswith(f"/{body['rebalance_id']}/")

    data = read(api, body["rebalance_id"], body["position"])
    assert data["status"] == "completed" and data["reason"] == ""
    trades = [(e["kind"], e["trade_index"], e["side"], e["pair"]) for e in data["timeline"]
              if e["trade_index"] is not None]
    assert trades == [("trade", 0, "sell", "BTC/USD"), ("trade", 1, "buy", "ETH/USD")]
    assert data["timeline"][-1]["kind"] == "completed"
    mine = api.get("/api/trading/trades/").json()["data"]["results"]
    rebalance_id = body["rebalance_id"]
    assert {t["client_trade_id"] for t in mine} == {None, f"rb:{rebalance_id}:0", f"rb:{rebalance_id}:1"}


def test_a_planned_rebalance_executes_once_through_its_execute_endpoint(api: APIClient) -> None:
    funded(api)
    body = plan(api, {"ETH": "100"}).json()
    url = f"{REBALANCE}{body['rebalance_id']}/execute/"
    response = api.post(url, {}, format="json")
    assert response.status_code == 202, response.content
    assert response["Location"] == f"{REBALANCE}{body['rebalance_id']}/"
    assert read(api, body["rebalance_id"], response.json()["position"])["status"] == "completed"

    before = written()
    assert_problem(api.post(url, {}, format="json"), 409, "rebalance_not_planned")
    assert written() == before


def test_the_idempotency_key_answers_the_same_plan_once(api: APIClient, alice: AbstractUser) -> None:
    funded(api)
    first = plan(api, {"ETH": "50", "USD": "50"}, headers={"Idempotency-Key": "rb-1"})
    events = len(read_stream(f"portfolio-{alice.pk}"))
    again = plan(api, {"ETH": "50", "USD": "50"}, headers={"Idempotency-Key": "rb-1"})
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(read_stream(f"portfolio-{alice.pk}")) == events
    assert_problem(plan(api, {"ETH": "40", "USD": "60"}, headers={"Idempotency-Key": "rb-1"}), 422,
                   "idempotency_key_reused")


@pytest.mark.parametrize(("targets", "status", "code", "detail"), [
    ({"BTC": "50", "USD": "49.8"}, 400, "invalid_allocation", "sum to 99.8%"),
    ({"BTC": "50", "USD": "50.2"}, 400, "invalid_allocation", "sum to 100.2%"),
    ({"XYZ": "50", "USD": "50"}, 400, "unknown_asset", "XYZ"),
    ({"BTC": "110", "USD": "-10"}, 400, "negative_weight", "USD"),
    ({"DOGE": "50", "USD": "50"}, 503, "market_price_unavailable", ""),
])
def test_each_refusal_has_its_code_and_writes_nothing(api: APIClient, targets: dict[str, str], status: int,
                                                      code: str, detail: str) -> None:
    funded(api)
    before = written()
    body = assert_problem(plan(api, targets), status, code)
    assert detail in body["detail"]
    assert written() == before


def test_an_empty_portfolio_has_nothing_to_rebalance(api: APIClient) -> None:
    assert_problem(plan(api, {"USD": "100"}), 409, "nothing_to_rebalance")


@pytest.mark.parametrize("raw", [
    '{"targets": {"BTC": "100"}, "user_id": 2}', '{"targets": {}}', '{}', '{"targets": ["BTC"]}',
    '{"targets": {"BTC": "abc"}}', '{"targets": {"BTC": NaN}}', '{"targets": {"BTC": "1e30"}}',
    '{"targets": {"BTC": "100"}, "execute": "maybe"}',
])
def test_bad_bodies_and_unknown_fields_are_400_and_write_nothing(api: APIClient, raw: str) -> None:
    funded(api)
    before = written()
    response = post_json(api, REBALANCE, raw)
    assert response.status_code == 400, response.content
    assert written() == before


def test_unknown_field_names_the_field(api: APIClient) -> None:
    body = assert_problem(plan(api, {"USD": "100"}, note="x"), 400, "validation_failed")
    assert body["errors"] == {"note": ["Unknown field."]}


def test_too_many_targets_are_400(api: APIClient) -> None:
    targets = {f"A{n}": "1" for n in range(51)}
    assert_problem(plan(api, targets), 400, "validation_failed")


def test_another_users_rebalance_is_404_to_read_and_to_execute(api: APIClient, bob_api: APIClient,
                                                                staff_api: APIClient, alice: AbstractUser) -> None:
    funded(api)
    body = plan(api, {"ETH": "100"}).json()
    rebalance_id = body["rebalance_id"]
    read(api, rebalance_id, body["position"])
    before = written()
    assert_problem(bob_api.get(f"{REBALANCE}{rebalance_id}/"), 404, "rebalance_not_found")
    assert_problem(bob_api.post(f"{REBALANCE}{rebalance_id}/execute/", {}, format="json"), 404,
                   "rebalance_not_found")
    assert_problem(bob_api.get(REBALANCE, {"user_id": alice.pk}), 404, "portfolio_not_found")
    assert bob_api.get(REBALANCE).json()["data"]["results"] == []
    assert written() == before
    assert staff_api.get(f"{REBALANCE}{rebalance_id}/").json()["data"]["status"] == "planned"
    assert_problem(staff_api.post(f"{REBALANCE}{rebalance_id}/execute/", {}, format="json"), 404,
                   "rebalance_not_found")  # staff read anyone's rebalances, but only owners trade


def test_the_list_shows_your_rebalances_newest_first_and_filters_by_status(api: APIClient, staff_api: APIClient,
                                                                            alice: AbstractUser) -> None:
    funded(api)
    first = plan(api, {"ETH": "100"}).json()
    second = plan(api, {"BTC": "50", "USD": "50"}, execute=True).json()
    response = api.get(REBALANCE, {"min_position": second["position"]})
    assert response.status_code == 200
    data = response.json()["data"]
    assert [r["rebalance_id"] for r in data["results"]] == [second["rebalance_id"], first["rebalance_id"]]
    assert "plan" not in data["results"][0] and data["count"] == 2
    planned = api.get(REBALANCE, {"status": "planned"}).json()["data"]["results"]
    assert [r["rebalance_id"] for r in planned] == [first["rebalance_id"]]
    assert staff_api.get(REBALANCE, {"user_id": alice.pk}).json()["data"]["count"] == 2
    assert_problem(api.get(REBALANCE, {"status": "lost"}), 400, "validation_failed")


def test_anonymous_requests_are_401(client: Any) -> None:
    assert client.get(REBALANCE).status_code == 401
    assert client.post(REBALANCE, {"targets": {"USD": "100"}}, content_type="application/json").status_code == 401


def test_a_plan_of_an_unknown_id_is_404(api: APIClient) -> None:
    assert_problem(api.get(f"{REBALANCE}00000000-0000-4000-8000-000000000000/"), 404, "rebalance_not_found")
    funded(api)
    assert_problem(api.post(f"{REBALANCE}00000000-0000-4000-8000-000000000000/execute/", {}, format="json"), 404,
                   "rebalance_not_found")
    assert Decimal(api.get("/api/portfolio/").json()["data"]["cash"]) > 0
