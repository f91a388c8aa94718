"""Owners only (DESIGN invariant 10), swept over every operation of the OpenAPI schema.

Alice holds Bob's real ids (made through the API first) and tries each on every endpoint that takes
one: a 404 (never a 403 that confirms the id, never a 200), nothing written (events and command
records counted), nothing of Bob's in the body. Commands that act on the caller's own portfolio
refuse a smuggled ``user_id``. Lists show Alice only her rows. Operator endpoints and the admin
refuse her. Every operation of the schema must be in one of the tables below, so a new endpoint
without a case fails ``test_every_operation_of_the_schema_has_a_case``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import AbstractUser
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from cqrs_core.models import StoredEvent
from tests.api.support import assert_problem, written

from .conftest import Victim

pytestmark = pytest.mark.django_db

SIGNAL = {"pair": "BTC/USD", "side": "buy", "amount": "0.01", "price": "50000"}


@dataclass(frozen=True)
class Probe:
    """One request of Alice's with Bob's ids in it; path and query templates are filled from ``Victim.ids()``."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def send(self, client: APIClient, ids: dict[str, Any]) -> Any:
        path = self.path.format(**ids)
        if self.method == "GET":
            return client.get(path, {k: v.format(**ids) for k, v in self.query.items()}, headers=self.headers)
        return client.generic(self.method, path, json.dumps(self.body or {}), content_type="application/json",
                              headers=self.headers)


def bobs(**query: str) -> dict[str, str]:
    return {"user_id": "{user_id}", **query}


#: Endpoints that take an owner's id (path or ``user_id``): Alice with Bob's ids gets a 404.
OWNER_SCOPED: dict[tuple[str, str], list[Probe]] = {
    ("GET", "/api/portfolio/"): [Probe("GET", "/api/portfolio/", bobs()),
                                 Probe("GET", "/api/portfolio/", bobs(include="metrics,history"))],
    ("GET", "/api/portfolio/optimized/"): [Probe("GET", "/api/portfolio/optimized/", bobs())],
    ("GET", "/api/portfolio/performance/"): [Probe("GET", "/api/portfolio/performance/", bobs())],
    ("GET", "/api/portfolio/rebalance/"): [Probe("GET", "/api/portfolio/rebalance/", bobs()),
                                           Probe("GET", "/api/portfolio/rebalance/", bobs(status="planned"))],
    ("GET", "/api/portfolio/rebalance/{rebalance_id}/"): [Probe("GET", "/api/portfolio/rebalance/{rebalance_id}/")],
    ("POST", "/api/portfolio/rebalance/{rebalance_id}/execute/"): [
        Probe("POST", "/api/portfolio/rebalance/{rebalance_id}/execute/", body={}),
        Probe("POST", "/api/portfolio/rebalance/{rebalance_id}/execute/", body={}, headers={"Idempotency-Key": "k1"})],
    ("GET", "/api/trading/strategies/"): [Probe("GET", "/api/trading/strategies/", bobs())],
    ("GET", "/api/trading/strategies/{strategy_id}/"): [Probe("GET", "/api/trading/strategies/{strategy_id}/")],
    ("PATCH", "/api/trading/strategies/{strategy_id}/"): [
        Probe("PATCH", "/api/trading/strategies/{strategy_id}/", body={"name": "mine"}),
        Probe("PATCH", "/api/trading/strategies/{strategy_id}/", body={"name": "mine"}, headers={"If-Match": '"1"'})],
    ("DELETE", "/api/trading/strategies/{strategy_id}/"): [Probe("DELETE", "/api/trading/strategies/{strategy_id}/")],
    ("GET", "/api/trading/strategies/{strategy_id}/signals/"): [
        Probe("GET", "/api/trading/strategies/{strategy_id}/signals/"),
        Probe("GET", "/api/trading/strategies/{strategy_id}/signals/", {"outcome": "accepted"})],
    ("POST", "/api/trading/strategies/{strategy_id}/signals/"): [
        Probe("POST", "/api/trading/strategies/{strategy_id}/signals/", body=SIGNAL)],
    ("GET", "/api/trading/trades/"): [Probe("GET", "/api/trading/trades/", bobs()),
                                      Probe("GET", "/api/trading/trades/", bobs(pair="BTC/USD"))],
    ("GET", "/api/trading/trades/{trade_id}/"): [Probe("GET", "/api/trading/trades/{trade_id}/")],
    ("GET", "/api/yield/positions/"): [Probe("GET", "/api/yield/positions/", bobs()),
                                       Probe("GET", "/api/yield/positions/", bobs(strategy_id="{yield_strategy_id}"))],
    ("GET", "/api/yield/strategies/{strategy_id}/"): [Probe("GET", "/api/yield/strategies/{yield_strategy_id}/")],
}

#: Commands on the caller's own portfolio (no id in the path): a smuggled ``user_id`` is an unknown field.
OWN_PORTFOLIO_COMMANDS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/portfolio/deposits/"): {"amount": "10"},
    ("POST", "/api/portfolio/withdrawals/"): {"amount": "10"},
    ("POST", "/api/trading/trades/"): {"pair": "BTC/USD", "side": "buy", "amount": "0.01", "price": "50000"},
    ("POST", "/api/trading/strategies/"): {"name": "x", "rules": {"allowed_pairs": ["BTC/USD"]},
                                           "risk_profile": "moderate"},
    ("POST", "/api/portfolio/rebalance/"): {"targets": {"ETH": "50", "USD": "50"}},
    ("POST", "/api/yield/strategies/"): {"protocols": "any", "amount": "2000", "risk_tolerance": "moderate"},
}

#: Operator commands: a plain user gets 403 whoever the target is.
OPERATOR_ONLY: dict[tuple[str, str], Probe] = {
    ("PUT", "/api/portfolio/{user_id}/risk-limits/"): Probe("PUT", "/api/portfolio/{user_id}/risk-limits/",
                                                            body={"max_position_usd": "1"}),
    ("PUT", "/api/yield/protocols/{slug}/"): Probe("PUT", "/api/yield/protocols/safe-a/", body={"apy": "6"}),
}

#: Operations with no owner: market data, the protocol catalogue, sign-in, health.
PUBLIC = {
    ("GET", "/api/market/candles/"), ("GET", "/api/market/pairs/"), ("GET", "/api/market/pairs/{pair}/price/"),
    ("GET", "/api/market/top-coins/"), ("GET", "/api/yield/protocols/"), ("POST", "/api/auth/token/"),
    ("GET", "/health/live/"), ("GET", "/health/ready/"),
}

#: Lists Alice reads without naming anyone: her rows only. ``staff_sees`` says which of Bob's ids an
#: operator sees in the same list for Bob, which proves the check could find them.
LISTS: dict[str, str | None] = {
    "/api/portfolio/": None, "/api/portfolio/optimized/": None, "/api/portfolio/performance/": None,
    "/api/portfolio/rebalance/": "rebalance_id", "/api/trading/strategies/": "strategy_id",
    "/api/trading/trades/": "trade_id", "/api/yield/positions/": "yield_strategy_id",
}


def schema_operations() -> set[tuple[str, str]]:
    """Every (method, path) the app's OpenAPI schema documents, minus the test-only bus app."""
    from drf_spectacular.generators import SchemaGenerator

    spec = SchemaGenerator().get_schema(request=None, public=True)
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops
            if not path.startswith("/api/test-bus/")}


def test_every_operation_of_the_schema_has_a_case() -> None:
    tables = [set(OWNER_SCOPED), set(OWN_PORTFOLIO_COMMANDS), set(OPERATOR_ONLY), PUBLIC]
    covered = set().union(*tables)
    assert sum(len(t) for t in tables) == len(covered), "an operation is in two tables"
    operations = schema_operations()
    assert operations - covered == set(), "operations without an owners-only case"
    assert covered - operations == set(), "cases for operations the schema no longer has"


def assert_nothing_of_bobs(response: Any, victim: Victim, asked: str = "") -> None:
    """No id or name of Bob's in the body, except what the caller sent (a 404 may name the id asked for)."""
    text = response.content.decode()
    leaked = [secret for secret in victim.secrets() if secret in text and secret not in asked]
    assert leaked == [], f"Bob's {leaked} in {text[:500]}"


PROBES = [pytest.param(probe, id=f"{probe.method} {probe.path} {probe.query or ''}{probe.headers or ''}")
          for probes in OWNER_SCOPED.values() for probe in probes]


@pytest.mark.parametrize("probe", PROBES)
def test_alice_with_bobs_ids_gets_404_and_writes_nothing(probe: Probe, victim: Victim, api: APIClient,
                                                          bob_api: APIClient) -> None:
    if probe.method == "GET":  # the same request is Bob's own data: the 404 is not a wrong URL
        assert probe.send(bob_api, victim.ids()).status_code in (200, 202)
    before = written()
    response = probe.send(api, victim.ids())
    assert response.status_code == 404, response.content
    assert_problem(response, 404, response.json()["code"])
    assert response.json()["code"].endswith("_not_found")
    assert written() == before
    assert_nothing_of_bobs(response, victim, asked=response.request["PATH_INFO"] + response.request["QUERY_STRING"])


@pytest.mark.parametrize("operation", sorted(OWN_PORTFOLIO_COMMANDS), ids=" ".join)
def test_a_command_on_your_own_portfolio_refuses_someone_elses_user_id(
        operation: tuple[str, str], victim: Victim, api: APIClient) -> None:
    method, path = operation
    bob_stream = StoredEvent.objects.filter(stream_id=f"portfolio-{victim.user_id}").count()
    before = written()
    smuggled = {**OWN_PORTFOLIO_COMMANDS[operation], "user_id": victim.user_id}
    body = assert_problem(api.generic(method, path, json.dumps(smuggled), content_type="application/json"),
                          400, "validation_failed")
    assert body["errors"] == {"user_id": ["Unknown field."]}
    assert written() == before
    # A user_id in the query string is not a parameter of these commands: it must not redirect them.
    response = api.generic(method, f"{path}?user_id={victim.user_id}", json.dumps(OWN_PORTFOLIO_COMMANDS[operation]),
                           content_type="application/json")
    assert response.status_code in (201, 202), response.content
    assert StoredEvent.objects.filter(stream_id=f"portfolio-{victim.user_id}").count() == bob_stream
    assert_nothing_of_bobs(response, victim)


def test_bobs_idempotency_key_is_not_alices(victim: Victim, api: APIClient, bob_api: APIClient,
                                           alice: AbstractUser) -> None:
    first = bob_api.post("/api/portfolio/deposits/", {"amount": "31.17"}, format="json",
                         headers={"Idempotency-Key": "shared-key"})
    assert first.status_code == 201
    bob_stream = StoredEvent.objects.filter(stream_id=f"portfolio-{victim.user_id}").count()
    mine = api.post("/api/portfolio/deposits/", {"amount": "5"}, format="json",
                    headers={"Idempotency-Key": "shared-key"})
    assert mine.status_code == 201 and mine.get("Idempotent-Replayed") is None, mine.content
    assert mine.json()["position"] != first.json()["position"]
    assert StoredEvent.objects.filter(stream_id=f"portfolio-{victim.user_id}").count() == bob_stream
    assert StoredEvent.objects.filter(stream_id=f"portfolio-{alice.pk}", event_type="portfolio.FundsDeposited",
                                      data__amount="5").exists()


@pytest.mark.parametrize("path", sorted(LISTS))
def test_alices_lists_hold_only_her_rows(path: str, victim: Victim, api: APIClient, staff_api: APIClient,
                                         alice: AbstractUser) -> None:
    response = api.get(path)
    assert response.status_code in (200, 202), response.content
    assert_nothing_of_bobs(response, victim)
    data = response.json()["data"]
    rows = data.get("results", [data])
    assert rows, "Alice has rows of her own here"
    assert {row.get("user_id", alice.pk) for row in rows} == {alice.pk}
    if LISTS[path] is not None:
        seen_by_staff = staff_api.get(path, {"user_id": victim.user_id}).content.decode()
        assert victim.ids()[LISTS[path]] in seen_by_staff


def test_alices_signal_list_of_her_own_strategy_holds_only_her_signals(victim: Victim, api: APIClient) -> None:
    mine = api.get("/api/trading/strategies/").json()["data"]["results"]
    assert [s["name"] for s in mine] == ["Alice plain strategy"]
    response = api.get(f"/api/trading/strategies/{mine[0]['strategy_id']}/signals/")
    assert response.status_code == 200 and response.json()["data"]["count"] == 1
    assert_nothing_of_bobs(response, victim)


@pytest.mark.parametrize("operation", sorted(OPERATOR_ONLY), ids=" ".join)
def test_plain_users_are_refused_operator_commands_and_nothing_is_written(
        operation: tuple[str, str], victim: Victim, api: APIClient, alice: AbstractUser) -> None:
    probe = OPERATOR_ONLY[operation]
    before = written()
    for target in (victim.user_id, alice.pk):  # someone else's portfolio, and her own
        assert_problem(probe.send(api, {**victim.ids(), "user_id": target}), 403, "operators_only")
    assert written() == before


def admin_urls() -> list[str]:
    """The admin index and every registered model's changelist and add page."""
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        meta = model._meta
        urls += [reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"),
                 reverse(f"admin:{meta.app_label}_{meta.model_name}_add")]
    return urls


def test_plain_users_are_sent_to_the_admin_login(alice: AbstractUser) -> None:
    client = Client()
    client.force_login(alice)
    before = written()
    urls = admin_urls()
    assert len(urls) > 10
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, (url, response.status_code)
        assert response["Location"].startswith(reverse("admin:login")), (url, response["Location"])
    response = client.post(urls[-1], {})
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert written() == before
