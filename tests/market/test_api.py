"""HTTP: top coins, candles, pairs and prices: status codes, stable error codes, Decimal strings."""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from market.ingest import SAMPLE_CSV, load_csv

pytestmark = pytest.mark.django_db(transaction=True)
TOP, CANDLES, PAIRS = "/api/market/top-coins/", "/api/market/candles/", "/api/market/pairs/"


@pytest.fixture
def sample() -> int:
    """The shipped CSV, loaded; returns the position of its last event."""
    report = load_csv(SAMPLE_CSV)
    assert report.position is not None
    return report.position


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.content)
    assert body["code"] == code and body["status"] == status
    return body


def test_top_coins_answer_with_decimal_strings_and_the_read_position(api: APIClient, sample: int) -> None:
    response = api.get(TOP, {"min_position": sample})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["position"] >= sample and body["stale"] is False
    assert response["X-Read-Position"] == str(body["position"])
    results = body["data"]["results"]
    assert len(results) == 17 and not any(r["is_stablecoin"] for r in results)
    volumes = [float(r["quote_volume"]) for r in results]
    assert volumes == sorted(volumes, reverse=True)
    for key in ("last_price", "volume", "quote_volume", "price_change_pct", "volatility_pct"):
        assert isinstance(results[0][key], str)
    assert body["data"]["as_of"] == "2025-12-31T23:00:00+00:00" and body["data"]["window"] == "24h"


def test_top_coins_filters(api: APIClient, sample: int) -> None:
    body = api.get(TOP, {"include_stablecoins": "true", "limit": 100, "window": "7d", "sort": "volatility"}).json()
    results = body["data"]["results"]
    assert len(results) == 20 and {r["pair"] for r in results[-3:]} == {"USDT/USD", "USDC/USD", "DAI/USD"}
    assert all(r["hours"] == 168 for r in results)
    few = api.get(TOP, {"min_volume": "100000000", "sort": "price_change", "order": "asc", "limit": 5}).json()
    assert 0 < len(few["data"]["results"]) <= 5
    assert all(float(r["quote_volume"]) >= 1e8 for r in few["data"]["results"])


@pytest.mark.parametrize("params, field", [
    ({"limit": 101}, "limit"), ({"limit": 0}, "limit"), ({"window": "2h"}, "window"), ({"sort": "name"}, "sort"),
    ({"min_volume": "-1"}, "min_volume"), ({"min_volume": "abc"}, "min_volume"), ({"order": "up"}, "order"),
    ({"include_stablecoins": "maybe"}, "include_stablecoins"), ({"min_position": "-1"}, "min_position"),
    ({"colour": "red"}, "colour"),
])
def test_bad_top_coins_parameters_are_a_400_naming_the_field(api: APIClient, params: dict, field: str) -> None:  # type: ignore[type-arg]
    body = _problem(api.get(TOP, params), 400, "validation_failed")
    assert field in body["errors"]


def test_candles_are_paginated_and_filtered_by_time(api: APIClient, sample: int) -> None:
    body = api.get(CANDLES, {"pair": "BTC/USD", "limit": 2}).json()["data"]
    assert body["count"] == 168 and len(body["results"]) == 2 and body["previous"] is None
    assert "offset=2" in body["next"]
    first = body["results"][0]
    assert first["timeframe"] == "1h" and first["open_time"] == "2025-12-25T00:00:00+00:00" and Decimal(first["open"]) == Decimal("64000.00")
    page = api.get(body["next"]).json()["data"]
    assert page["results"][0]["open_time"] == "2025-12-25T02:00:00+00:00" and "offset=0" in page["previous"]
    ranged = api.get(CANDLES, {"pair": "btc-usd", "start": "2025-12-31T20:00:00+00:00",
                               "end": "2025-12-31T22:00:00+00:00"}).json()["data"]
    assert ranged["pair"] == "BTC/USD" and ranged["count"] == 2 and ranged["next"] is None


def test_candles_of_an_unknown_pair_or_a_backwards_range_are_a_400(api: APIClient) -> None:
    body = _problem(api.get(CANDLES, {"pair": "NOPE/USD"}), 400, "unknown_pair")
    assert body["pair"] == "NOPE/USD"
    _problem(api.get(CANDLES, {}), 400, "validation_failed")
    _problem(api.get(CANDLES, {"pair": "BTC/USD", "start": "2026-01-02T00:00:00+00:00", "end": "2026-01-01T00:00:00+00:00"}),
             400, "validation_failed")


def test_pairs_and_latest_price(api: APIClient, sample: int) -> None:
    pairs = api.get(PAIRS).json()["data"]
    assert len(pairs) == 20 and all(isinstance(p["price"], str) for p in pairs)
    price = api.get(f"{PAIRS}BTC-USD/price/").json()["data"]
    assert price["pair"] == "BTC/USD" and price["price"] == next(p["price"] for p in pairs if p["pair"] == "BTC/USD")
    _problem(api.get(f"{PAIRS}NOPE-USD/price/"), 400, "unknown_pair")


def test_every_endpoint_needs_authentication() -> None:
    anon = APIClient()
    for url in (TOP, f"{CANDLES}?pair=BTC/USD", PAIRS, f"{PAIRS}BTC-USD/price/"):
        _problem(anon.get(url), 401, "not_authenticated")


def test_the_schema_documents_the_operations_and_their_errors(api: APIClient) -> None:
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("/api/market/top-coins/", "/api/market/candles/", "/api/market/pairs/",
                 "/api/market/pairs/{pair}/price/"):
        operation = schema["paths"][path]["get"]
        assert {"200", "400", "401"} <= set(operation["responses"])
        assert "min_position" in {p["name"] for p in operation["parameters"]}
    top = schema["paths"]["/api/market/top-coins/"]["get"]
    assert {"limit", "window", "sort", "min_volume", "include_stablecoins"} <= {p["name"] for p in top["parameters"]}
    assert top["responses"]["200"]["content"]["application/json"]["examples"]
