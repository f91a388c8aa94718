"""Fixtures of the owners-only sweep: Bob's real resources, made through the API, for Alice to reach for.

Alice (``api``) is the attacker, Bob (``bob_api``) the owner; both are plain users. Olive
(``staff_api``) is an operator. The market is fixed and the yield catalogue listed, as in the
context tests whose fixtures these are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import AbstractUser
from rest_framework.test import APIClient

from cqrs_core.bus import command_bus
from tests.api.conftest import anon_api  # noqa: F401  (fixture)
from tests.portfolio.conftest import (  # noqa: F401  (fixtures)
    _fresh_throttles, alice, api, bob, bob_api, fixed_market, operator, staff_api,
)
from tests.yield_farming.support import PROTOCOLS

#: Bob's strategy name: a string that can only be in a body that shows Bob's strategy.
BOB_STRATEGY_NAME = "Bob private momentum 7f3c"


@dataclass(frozen=True)
class Victim:
    """Bob's ids, as a client would learn them, and the strings that betray his rows in a body."""

    user_id: int
    trade_id: str
    strategy_id: str
    rebalance_id: str
    yield_strategy_id: str

    def ids(self) -> dict[str, Any]:
        """The values the path templates of the sweep fill in."""
        return {"user_id": self.user_id, "trade_id": self.trade_id, "strategy_id": self.strategy_id,
                "rebalance_id": self.rebalance_id, "yield_strategy_id": self.yield_strategy_id}

    def secrets(self) -> list[str]:
        return [self.trade_id, self.strategy_id, self.rebalance_id, self.yield_strategy_id, BOB_STRATEGY_NAME]


def created(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.content
    return response.json()


def own_resources(client: APIClient, strategy_name: str) -> dict[str, str]:
    """A funded portfolio with a trade, a strategy with a signal, a rebalance plan and a yield strategy."""
    created(client.post("/api/portfolio/deposits/", {"amount": "100000"}, format="json"))
    trade = created(client.post("/api/trading/trades/", {"pair": "BTC/USD", "side": "buy", "amount": "0.1",
                                                         "price": "50000"}, format="json"))
    strategy = created(client.post("/api/trading/strategies/", {
        "name": strategy_name, "rules": {"allowed_pairs": ["BTC/USD", "ETH/USD"]}, "risk_profile": "moderate"},
        format="json"))
    created(client.post(f"/api/trading/strategies/{strategy['strategy_id']}/signals/",
                        {"pair": "BTC/USD", "side": "buy", "amount": "0.01", "price": "50000"}, format="json"))
    rebalance = created(client.post("/api/portfolio/rebalance/", {"targets": {"ETH": "50", "USD": "50"}},
                                    format="json"))
    farm = created(client.post("/api/yield/strategies/", {"protocols": "any", "amount": "5000",
                                                          "risk_tolerance": "moderate"}, format="json"), 202)
    return {"trade_id": str(trade["trade_id"]), "strategy_id": str(strategy["strategy_id"]),
            "rebalance_id": str(rebalance["rebalance_id"]), "yield_strategy_id": str(farm["strategy_id"])}


@pytest.fixture
def catalogue() -> None:
    for command in PROTOCOLS:
        command_bus.dispatch(command)


@pytest.fixture
def victim(catalogue: None, bob: AbstractUser, bob_api: APIClient, api: APIClient,
           django_capture_on_commit_callbacks: Any) -> Victim:
    """Bob's resources; Alice has her own too, so her lists are not empty for want of rows.

    The after-commit wake-ups run here, so the read models (and the yield saga) are up to date.
    """
    with django_capture_on_commit_callbacks(execute=True):
        own_resources(api, "Alice plain strategy")
        ids = own_resources(bob_api, BOB_STRATEGY_NAME)
    return Victim(user_id=bob.pk, **ids)
