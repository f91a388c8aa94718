"""HTTP tests of the strategy endpoints: each code, nothing written on error, owners only, exact money."""
from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from rest_framework.test import APIClient

from cqrs_core.models import StoredEvent
from tests.api.support import assert_problem, post_json, written
from tests.trading.test_api import fund

pytestmark = pytest.mark.django_db(transaction=True)

STRATEGIES = "/api/trading/strategies/"
RULES = {"allowed_pairs": ["BTC/USD", "ETH/USD"], "max_notional_usd": "5000"}
SIGNAL = {"pair": "BTC/USD", "side": "buy", "amount": "0.02", "price": "50000"}


def create(api: APIClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "Momentum", "rules": RULES, "risk_profile": "moderate", **fields}
    response = api.post(STRATEGIES, body, format="json")
    assert response.status_code == 201, response.content
    assert response["Location"].endswith(f"{response.json()['strategy_id']}/")
    return response.json()


def url(strategy_id: str, action: str = "") -> str:
    return f"{STRATEGIES}{strategy_id}/" + (f"{action}/" if action else "")


def signal(api: APIClient, strategy_id: str, **fields: Any) -> dict[str, Any]:
    response = api.post(url(strategy_id, "signals"), {**SIGNAL, **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def read(api: APIClient, path: str, min_position: int, **params: Any) -> dict[str, Any]:
    response = api.get(path, {"min_position": min_position, **params})
    assert response.status_code == 200, response.content
    assert response.json()["stale"] is False
    return response.json()["data"]


# --- create, list, read --------------------------------------------------------------------------
def test_a_strategy_is_created_listed_and_read(api: APIClient) -> None:
    created = create(api, rules={**RULES, "max_portfolio_share": "0.25"})
    assert created["status"] == "active" and created["stream_version"] == 1
    page = read(api, STRATEGIES, created["position"])
    assert page["count"] == 1 and page["results"][0]["strategy_id"] == created["strategy_id"]
    response = api.get(url(created["strategy_id"]), {"min_position": created["position"]})
    assert response["ETag"] == '"1"'
    detail = response.json()["data"]
    assert detail["rules"] == {"allowed_pairs": ["BTC/USD", "ETH/USD"], "allowed_sides": ["buy", "sell"],
                               "max_notional_usd": "5000", "max_portfolio_share": "0.25"}
    assert detail["risk_profile"] == "moderate" and detail["version"] == 1
    assert detail["signals"] == {"accepted": 0, "rejected": 0, "rejected_by_reason": {}, "latest": []}
    assert detail["trades"] == {"count": 0, "latest": []}
    assert detail["pnl"]["net_pnl"] == "0"


@pytest.mark.parametrize(("rules", "code"), [
    ({"allowed_pairs": []}, "invalid_strategy_rules"),
    ({"allowed_pairs": ["XRP/USD"]}, "unknown_pair"),
    ({"allowed_pairs": ["ETH/BTC"]}, "unknown_pair"),
    ({**RULES, "allowed_sides": ["long"]}, "invalid_strategy_rules"),
    ({**RULES, "allowed_sides": []}, "invalid_strategy_rules"),
    ({**RULES, "max_notional_usd": "5"}, "invalid_strategy_rules"),
    ({**RULES, "max_portfolio_share": "1.5"}, "invalid_strategy_rules"),
    ({**RULES, "max_portfolio_share": "0"}, "invalid_strategy_rules"),
    ({**RULES, "max_notional_usd": "NaN"}, "validation_failed"),
    ({**RULES, "max_notional_usd": "1e400"}, "validation_failed"),
    ({**RULES, "max_portfolio_share": "0.1234567890123456789"}, "validation_failed"),
    ({**RULES, "leverage": "3"}, "validation_failed"),
    ({"max_notional_usd": "100"}, "validation_failed"),
    ("BTC/USD", "validation_failed"),
])
def test_bad_rules_are_refused_with_a_code_and_write_nothing(api: APIClient, rules: Any, code: str) -> None:
    before = written()
    body = assert_problem(api.post(STRATEGIES, {"name": "x", "rules": rules, "risk_profile": "moderate"},
                                   format="json"), 400, code)
    if code == "validation_failed":
        assert any(key.startswith("rules") for key in body["errors"]), body
    assert written() == before


@pytest.mark.parametrize("body", [
    {"name": "x", "rules": RULES, "risk_profile": "reckless"},
    {"name": "", "rules": RULES, "risk_profile": "moderate"},
    {"name": "x" * 101, "rules": RULES, "risk_profile": "moderate"},
    {"name": "x", "rules": RULES, "risk_profile": "moderate", "owner_id": 2},
    {"name": "x", "risk_profile": "moderate"},
])
def test_bad_input_is_refused_and_writes_nothing(api: APIClient, body: dict) -> None:
    before = written()
    assert_problem(api.post(STRATEGIES, body, format="json"), 400, "validation_failed")
    assert written() == before


def test_unknown_fields_are_named(api: APIClient) -> None:
    body = assert_problem(api.post(STRATEGIES, {"name": "x", "rules": {**RULES, "stop": "1"}, "risk_profile":
                                                "moderate", "owner_id": 2}, format="json"), 400, "validation_failed")
    assert body["errors"]["owner_id"] == ["Unknown field."] and body["errors"]["rules.stop"] == ["Unknown field."]


def test_raw_json_nan_and_inexact_floats_are_refused(api: APIClient) -> None:
    before = written()
    raw = '{"name": "x", "risk_profile": "moderate", "rules": {"allowed_pairs": ["BTC/USD"], "max_notional_usd": NaN}}'
    assert_problem(post_json(api, STRATEGIES, raw), 400, "malformed_request")
    strategy_id = create(api)["strategy_id"]
    before = written()
    assert_problem(post_json(api, url(strategy_id, "signals"),
                             '{"pair": "BTC/USD", "side": "buy", "amount": 0.1, "price": Infinity}'),
                   400, "malformed_request")
    assert_problem(post_json(api, url(strategy_id, "signals"),
                             '{"pair": "BTC/USD", "side": "buy", "amount": "0.02", "price": "NaN"}'),
                   400, "validation_failed")
    assert written() == before


def test_exact_json_numbers_keep_every_digit(api: APIClient) -> None:
    fund(api, "100000")
    strategy_id = create(api)["strategy_id"]
    response = post_json(api, url(strategy_id, "signals"),
                         '{"pair": "BTC/USD", "side": "buy", "amount": 0.012345678901234567, "price": 50000}')
    assert response.status_code == 201, response.content
    assert response.json()["notional"] == "617.283945061728350000"


def test_list_filters_by_status_and_pages(api: APIClient) -> None:
    first = create(api, name="one")
    create(api, name="two")
    archived = api.delete(url(first["strategy_id"])).json()
    assert read(api, STRATEGIES, archived["position"], status="archived")["count"] == 1
    assert [s["name"] for s in read(api, STRATEGIES, archived["position"], status="active")["results"]] == ["two"]
    page = read(api, STRATEGIES, archived["position"], limit=1, offset=1)
    assert page["count"] == 2 and len(page["results"]) == 1
    assert_problem(api.get(STRATEGIES, {"status": "deleted"}), 400, "validation_failed")
    assert_problem(api.get(STRATEGIES, {"limit": 0}), 400, "validation_failed")


# --- owners only ---------------------------------------------------------------------------------
def test_another_users_strategy_is_not_found_and_nothing_is_written(api: APIClient, bob_api: APIClient,
                                                                    alice: AbstractUser) -> None:
    fund(bob_api)
    strategy_id = create(api)["strategy_id"]
    before = written()
    assert_problem(bob_api.get(url(strategy_id)), 404, "strategy_not_found")
    assert_problem(bob_api.get(url(strategy_id, "signals")), 404, "strategy_not_found")
    assert_problem(bob_api.patch(url(strategy_id), {"name": "mine"}, format="json"), 404, "strategy_not_found")
    assert_problem(bob_api.patch(url(strategy_id), {"name": "mine"}, format="json", headers={"If-Match": '"7"'}),
                   404, "strategy_not_found")
    assert_problem(bob_api.delete(url(strategy_id)), 404, "strategy_not_found")
    assert_problem(bob_api.post(url(strategy_id, "signals"), SIGNAL, format="json"), 404, "strategy_not_found")
    assert_problem(bob_api.get(STRATEGIES, {"user_id": alice.pk}), 404, "portfolio_not_found")
    assert written() == before
    assert_problem(bob_api.get(url(str(uuid.uuid4()))), 404, "strategy_not_found")


def test_staff_read_every_strategy_but_change_none(api: APIClient, staff_api: APIClient, alice: AbstractUser) -> None:
    created = create(api)
    fund(staff_api)
    assert read(staff_api, STRATEGIES, created["position"])["count"] == 1
    assert read(staff_api, STRATEGIES, created["position"], user_id=alice.pk)["count"] == 1
    assert read(staff_api, url(created["strategy_id"]), created["position"])["name"] == "Momentum"
    before = written()
    assert_problem(staff_api.patch(url(created["strategy_id"]), {"name": "x"}, format="json"), 403,
                   "not_strategy_owner")
    assert_problem(staff_api.post(url(created["strategy_id"], "signals"), SIGNAL, format="json"), 403,
                   "not_strategy_owner")
    assert written() == before


def test_anonymous_clients_are_refused(anon_api: APIClient) -> None:
    assert_problem(anon_api.get(STRATEGIES), 401, "not_authenticated")
    assert_problem(anon_api.post(STRATEGIES, {}, format="json"), 401, "not_authenticated")


# --- update and archive ---------------------------------------------------------------------------
def test_patch_updates_and_honours_if_match(api: APIClient) -> None:
    strategy_id = create(api)["strategy_id"]
    before = written()
    assert_problem(api.patch(url(strategy_id), {"name": "late"}, format="json", headers={"If-Match": '"3"'}),
                   412, "precondition_failed")
    assert_problem(api.patch(url(strategy_id), {}, format="json"), 400, "validation_failed")
    assert_problem(api.patch(url(strategy_id), {"rules": {"allowed_pairs": ["XRP/USD"]}}, format="json"),
                   400, "unknown_pair")
    assert_problem(api.patch(url(strategy_id), {"colour": "red"}, format="json"), 400, "validation_failed")
    assert written() == before
    response = api.patch(url(strategy_id), {"risk_profile": "conservative"}, format="json",
                         headers={"If-Match": '"1"'})
    assert response.status_code == 200 and response["ETag"] == '"2"'
    detail = read(api, url(strategy_id), response.json()["position"])
    assert detail["risk_profile"] == "conservative" and detail["name"] == "Momentum" and detail["version"] == 2


def test_delete_archives_the_strategy_and_keeps_its_events(api: APIClient) -> None:
    fund(api)
    strategy_id = create(api)["strategy_id"]
    signal(api, strategy_id)
    response = api.delete(url(strategy_id), headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "archived" and response.json()["position"] is not None
    detail = read(api, url(strategy_id), response.json()["position"])
    assert detail["status"] == "archived" and detail["archived_at"] and detail["trades"]["count"] == 1
    assert StoredEvent.objects.filter(stream_id=f"strategy-{strategy_id}").count() == 2
    before = written()
    assert_problem(api.patch(url(strategy_id), {"name": "x"}, format="json"), 409, "strategy_archived")
    assert_problem(api.delete(url(strategy_id)), 409, "strategy_archived")
    assert_problem(api.post(url(strategy_id, "signals"), SIGNAL, format="json"), 409, "strategy_archived")
    assert written() == before


# --- signals ------------------------------------------------------------------------------------
def test_an_accepted_signal_places_a_trade_for_the_strategy(api: APIClient) -> None:
    fund(api, "100000")
    strategy_id = create(api)["strategy_id"]
    body = signal(api, strategy_id, confidence="0.9", client_trade_id="sig-1")
    assert body["outcome"] == "accepted" and body["reason"] is None and body["trade_id"]
    assert body["notional"] == "1000.000000000000000000" and body["fee"] == "1.000000000000000000"
    assert body["stream_version"] == StoredEvent.objects.filter(stream_id__startswith="portfolio-").count()
    trade = read(api, f"/api/trading/trades/{body['trade_id']}/", body["position"])
    assert trade["strategy_id"] == strategy_id and trade["client_trade_id"] == "sig-1"
    [row] = read(api, url(strategy_id, "signals"), body["position"])["results"]
    assert row["outcome"] == "accepted" and row["trade_id"] == body["trade_id"]
    assert Decimal(row["confidence"]) == Decimal("0.9"), row


def test_a_rejected_signal_is_recorded_with_its_reason(api: APIClient) -> None:
    fund(api, "100000")
    strategy_id = create(api)["strategy_id"]
    body = signal(api, strategy_id, amount="0.2")
    assert body["outcome"] == "rejected" and body["reason"] == "max_notional_exceeded"
    assert body["trade_id"] is None and body["context"]["max_notional_usd"] == "5000"
    assert body["position"] is not None
    assert StoredEvent.objects.filter(event_type="trading.TradeExecuted").count() == 0
    page = read(api, url(strategy_id, "signals"), body["position"], outcome="rejected")
    assert page["count"] == 1 and page["results"][0]["reason"] == "max_notional_exceeded"
    assert read(api, url(strategy_id, "signals"), body["position"], outcome="accepted")["count"] == 0


@pytest.mark.parametrize(("fields", "reason"), [
    ({"pair": "SOL/USD", "price": "100", "amount": "1"}, "pair_not_allowed"),
    ({"confidence": "0.1"}, "confidence_too_low"),
    ({"price": "60000", "amount": "0.01"}, "price_out_of_range"),
    ({"side": "sell"}, "insufficient_position"),
    ({"amount": "0.0001"}, "amount_too_small"),
    ({"amount": "0.021"}, "max_portfolio_share_exceeded"),  # 1,050 > 10% of 10,000
])
def test_each_rejection_reason_over_http(api: APIClient, fields: dict, reason: str) -> None:
    fund(api, "10000")
    strategy_id = create(api)["strategy_id"]
    assert signal(api, strategy_id, **fields)["reason"] == reason


def test_insufficient_funds_is_a_rejection(api: APIClient, settings: Any) -> None:
    settings.TRADING_RISK_PROFILES = {"aggressive": {"max_portfolio_share": "1"}}
    fund(api, "1000")
    strategy_id = create(api, risk_profile="aggressive")["strategy_id"]
    assert signal(api, strategy_id, amount="0.02")["reason"] == "insufficient_funds"  # 1,000 + 1 fee


@pytest.mark.parametrize(("fields", "status", "code"), [
    ({"amount": "0"}, 400, "amount_not_positive"),
    ({"side": "short"}, 400, "validation_failed"),
    ({"confidence": "1.5"}, 400, "validation_failed"),
    ({"confidence": "-0.1"}, 400, "validation_failed"),
    ({"amount": "0.1234567890123456789"}, 400, "validation_failed"),
    ({"strategy": "x"}, 400, "validation_failed"),
])
def test_signal_input_errors_write_nothing(api: APIClient, fields: dict, status: int, code: str) -> None:
    fund(api)
    strategy_id = create(api)["strategy_id"]
    before = written()
    assert_problem(api.post(url(strategy_id, "signals"), {**SIGNAL, **fields}, format="json"), status, code)
    assert written() == before


def test_a_reused_client_trade_id_is_a_conflict(api: APIClient) -> None:
    fund(api)
    strategy_id = create(api)["strategy_id"]
    signal(api, strategy_id, client_trade_id="dup")
    before = written()
    assert_problem(api.post(url(strategy_id, "signals"), {**SIGNAL, "client_trade_id": "dup"}, format="json"), 409,
                   "duplicate_client_trade_id")
    assert written() == before


def test_a_signal_for_an_unknown_strategy_is_not_found(api: APIClient) -> None:
    fund(api)
    before = written()
    assert_problem(api.post(url(str(uuid.uuid4()), "signals"), SIGNAL, format="json"), 404, "strategy_not_found")
    assert written() == before


def test_an_idempotency_key_gives_one_signal(api: APIClient) -> None:
    fund(api)
    strategy_id = create(api)["strategy_id"]
    headers = {"Idempotency-Key": "sig-key"}
    first = api.post(url(strategy_id, "signals"), SIGNAL, format="json", headers=headers)
    again = api.post(url(strategy_id, "signals"), SIGNAL, format="json", headers=headers)
    assert first.json() == again.json() and again["Idempotent-Replayed"] == "true"
    assert StoredEvent.objects.filter(event_type="trading.TradeSignalAccepted").count() == 1


# --- P&L ------------------------------------------------------------------------------------------
def test_strategy_pnl_counts_only_its_own_trades_at_latest_prices(api: APIClient, fixed_market: dict) -> None:
    fund(api, "100000")
    api.post("/api/trading/trades/", {**SIGNAL, "amount": "0.05"}, format="json")  # outside the strategy
    strategy_id = create(api, risk_profile="aggressive", rules={"allowed_pairs": ["BTC/USD"]})["strategy_id"]
    signal(api, strategy_id, amount="0.04")                       # 2,000 at 50,000
    signal(api, strategy_id, amount="0.04", price="51000")        # 2,040: average 50,500
    body = signal(api, strategy_id, side="sell", amount="0.1", price="52000")  # sells 0.02 it did not buy
    assert body["outcome"] == "accepted", body
    fixed_market["BTC/USD"] = Decimal("51000")
    pnl = read(api, url(strategy_id), body["position"])["pnl"]
    # Without the market move: the strategy sold everything it held, so nothing is unrealised.
    [btc] = pnl["assets"]
    assert Decimal(btc["quantity"]) == 0 and Decimal(btc["unmatched_sold"]) == Decimal("0.02")
    assert Decimal(btc["realised_pnl"]) == Decimal("120")  # (52,000 - 50,500) x 0.08
    assert Decimal(pnl["fees"]) == Decimal("2") + Decimal("2.04") + Decimal("5.2")
    assert Decimal(pnl["net_pnl"]) == Decimal("120") - Decimal("9.24")


def test_unrealised_pnl_uses_the_latest_price_at_query_time(api: APIClient, fixed_market: dict) -> None:
    fund(api, "100000")
    strategy_id = create(api)["strategy_id"]
    position = signal(api, strategy_id, amount="0.02")["position"]
    fixed_market["BTC/USD"] = Decimal("55000")
    pnl = read(api, url(strategy_id), position)["pnl"]
    assert pnl["unrealised_pnl"] == "100.000000000000000000" and pnl["assets"][0]["market_price"] == "55000"
    assert pnl["realised_pnl"] == "0.000000000000000000", pnl
