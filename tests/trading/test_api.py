"""HTTP tests of the trading endpoints: each error code, nothing written on error, owners only."""
from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from rest_framework.test import APIClient

from cqrs_core.models import StoredEvent
from tests.api.support import assert_problem, post_json, written

pytestmark = pytest.mark.django_db(transaction=True)

TRADES = "/api/trading/trades/"


def fund(api: APIClient, amount: str = "100000") -> int:
    response = api.post("/api/portfolio/deposits/", {"amount": amount}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["position"]


def trade(api: APIClient, **fields: Any) -> dict[str, Any]:
    body = {"pair": "BTC/USD", "side": "buy", "amount": "0.1", "price": "50000", **fields}
    response = api.post(TRADES, body, format="json")
    assert response.status_code == 201, response.content
    assert response["Location"].endswith(f"{response.json()['trade_id']}/")
    return response.json()


def listed(api: APIClient, min_position: int, **params: Any) -> dict[str, Any]:
    response = api.get(TRADES, {"min_position": min_position, **params})
    assert response.status_code == 200, response.content
    assert response.json()["stale"] is False
    return response.json()["data"]


def test_a_trade_is_executed_listed_and_moves_the_portfolio(api: APIClient) -> None:
    fund(api, "100000")
    body = trade(api, client_trade_id="my-1")
    assert body["notional"] == "5000.000000000000000000" and body["fee"] == "5.000000000000000000"
    page = listed(api, body["position"])
    assert page["count"] == 1 and page["results"][0]["trade_id"] == body["trade_id"]
    assert page["results"][0]["client_trade_id"] == "my-1"
    data = api.get("/api/portfolio/", {"min_position": body["position"]}).json()["data"]
    assert data["cash"] == "94995.000000000000000000"
    [btc] = data["positions"]
    assert btc["quantity"] == "0.100000000000000000" and btc["average_cost"] == "50000.000000000000000000"
    assert btc["market_value"] == "5000.000000000000000000" and btc["unrealised_pnl"] == "0.000000000000000000"
    assert data["allocation"] == {"USD": "94.9997", "BTC": "5.0003"}  # of 99,995 after the fee


def test_trade_executed_carries_command_and_correlation_ids(api: APIClient) -> None:
    fund(api)
    body = trade(api)
    row = StoredEvent.objects.get(event_type="trading.TradeExecuted")
    assert str(row.command_id) == body["command_id"] and row.correlation_id is not None


def test_a_large_trade_also_records_portfolio_impacted(api: APIClient) -> None:
    fund(api, "20000")
    trade(api)
    impact = StoredEvent.objects.get(event_type="portfolio.PortfolioImpacted")
    assert impact.data["change_percent"] == "25.0000"


def test_market_value_and_unrealised_pnl_use_the_latest_price(api: APIClient, fixed_market: dict) -> None:
    fund(api)
    position = trade(api)["position"]
    fixed_market["BTC/USD"] = __import__("decimal").Decimal("55000")
    data = api.get("/api/portfolio/", {"min_position": position}).json()["data"]
    assert data["positions"][0]["unrealised_pnl"] == "500.000000000000000000"


@pytest.mark.parametrize(("fields", "status", "code"), [
    ({"amount": "0.0001"}, 400, "amount_too_small"),
    ({"amount": "2.1"}, 409, "position_limit_exceeded"),
    ({"pair": "XRP/USD"}, 400, "unknown_pair"),
    ({"amount": "1.9"}, 409, "insufficient_funds"),
    ({"side": "sell"}, 409, "insufficient_position"),
    ({"price": "60000"}, 400, "price_out_of_range"),
    ({"pair": "DOGE/USD", "amount": "100", "price": "0.2"}, 503, "market_price_unavailable"),
    ({"side": "short"}, 400, "validation_failed"),
    ({"leverage": "10"}, 400, "validation_failed"),
    ({"price": "NaN"}, 400, "validation_failed"),
    ({"amount": "0.1234567890123456789"}, 400, "validation_failed"),
])
def test_each_refusal_has_its_code_and_writes_nothing(api: APIClient, fields: dict, status: int, code: str) -> None:
    fund(api, "10000")
    before = written()
    body = {"pair": "BTC/USD", "side": "buy", "amount": "0.1", "price": "50000", **fields}
    assert_problem(api.post(TRADES, body, format="json"), status, code)
    assert written() == before


def test_raw_json_infinity_is_malformed(api: APIClient) -> None:
    before = written()
    response = post_json(api, TRADES, '{"pair": "BTC/USD", "side": "buy", "amount": Infinity, "price": "1"}')
    assert_problem(response, 400, "malformed_request")
    assert written() == before


def test_idempotency_key_gives_one_trade(api: APIClient) -> None:
    fund(api)
    headers = {"Idempotency-Key": "t-1"}
    body = {"pair": "BTC/USD", "side": "buy", "amount": "0.1", "price": "50000"}
    first = api.post(TRADES, body, format="json", headers=headers).json()
    again = api.post(TRADES, body, format="json", headers=headers).json()
    assert first["trade_id"] == again["trade_id"]
    assert StoredEvent.objects.filter(event_type="trading.TradeExecuted").count() == 1


def test_users_see_only_their_own_trades_staff_see_all(api: APIClient, bob_api: APIClient, staff_api: APIClient,
                                                       alice: AbstractUser, bob: AbstractUser) -> None:
    fund(api)
    fund(bob_api)
    mine = trade(api)
    position = trade(bob_api, pair="ETH/USD", price="2500", amount="1")["position"]
    assert [t["trade_id"] for t in listed(bob_api, position)["results"]] != [mine["trade_id"]]
    assert listed(bob_api, position)["count"] == 1
    assert_problem(bob_api.get(TRADES, {"user_id": alice.pk}), 404, "portfolio_not_found")
    assert_problem(bob_api.get(f"{TRADES}{mine['trade_id']}/"), 404, "trade_not_found")
    assert api.get(f"{TRADES}{mine['trade_id']}/").json()["data"]["trade_id"] == mine["trade_id"]
    assert listed(staff_api, position)["count"] == 2
    assert listed(staff_api, position, user_id=alice.pk)["results"][0]["trade_id"] == mine["trade_id"]
    assert staff_api.get(f"{TRADES}{mine['trade_id']}/").status_code == 200


def test_filters_and_pagination(api: APIClient) -> None:
    fund(api)
    trade(api)
    trade(api, pair="ETH/USD", price="2500", amount="1")
    position = trade(api, side="sell", amount="0.05")["position"]
    assert listed(api, position, pair="ETH/USD")["count"] == 1
    assert listed(api, position, side="sell")["count"] == 1
    page = listed(api, position, limit=2, offset=2)
    assert page["count"] == 3 and len(page["results"]) == 1
    assert listed(api, position, since="2000-01-01T00:00:00Z")["count"] == 3
    assert listed(api, position, until="2000-01-01T00:00:00Z")["count"] == 0
    assert_problem(api.get(TRADES, {"side": "long"}), 400, "validation_failed")
    assert_problem(api.get(TRADES, {"limit": 0}), 400, "validation_failed")


def test_reads_are_not_throttled_but_trades_are(api: APIClient, settings: Any) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"commands": "1/min", "auth": "1/min"}}
    for _ in range(3):
        assert api.get(TRADES).status_code == 200
    assert api.post(TRADES, {}, format="json").status_code == 400
    assert_problem(api.post(TRADES, {}, format="json"), 429, "throttled")
