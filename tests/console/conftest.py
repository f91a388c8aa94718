"""Fixtures of the console tests: an admin client, a quick history of deposits, background rebuilds awaited."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from cqrs_core.admin.projections import wait_for_background_rebuilds
from cqrs_core.bus import command_bus
from cqrs_core.commands import Actor
from tests.bus_app.commands import Deposit, OpenAccount

USER = Actor(user_id=1)

#: Tests whose projections run on commit. ``reset_sequences``: positions start at 1 in every test,
#: so on PostgreSQL the gap-free reader never waits on a hole that earlier tests' flushed rows left
#: (it waits until no older transaction runs anywhere in the cluster, which parallel runs delay).
WITH_PROJECTIONS = pytest.mark.django_db(transaction=True, reset_sequences=True)
BALANCES, LEDGER, OWNERS = "bus_app.balances", "bus_app.ledger", "bus_app.owners"
PROJECTIONS_URL = "admin:cqrs_core_projectionstate_changelist"


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("olivia", "olivia@example.com", "pw-olivia")


@pytest.fixture
def admin_client_olivia(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture(autouse=True)
def background_rebuilds_end() -> Iterator[None]:
    """No rebuild thread outlives its test (the database is flushed after it)."""
    yield
    assert wait_for_background_rebuilds(timeout=60), "a background rebuild did not finish"


def history(accounts: int = 2, deposits: int = 3) -> list[uuid.UUID]:
    """Accounts with deposits through the bus (wake-ups run the projections eagerly)."""
    opened = [uuid.uuid4() for _ in range(accounts)]
    for account in opened:
        command_bus.dispatch(OpenAccount(account_id=account), actor=USER)
    for i in range(deposits):
        for account in opened:
            command_bus.dispatch(Deposit(account_id=account, amount=Decimal(f"{i + 1}.25")), actor=USER)
    return opened


def act(client: Client, action: str, *names: str, url_name: str = PROJECTIONS_URL, follow: bool = True):
    """Post an admin changelist action for the selected primary keys."""
    return client.post(reverse(url_name), {"action": action, "_selected_action": list(names)}, follow=follow)


# --- the portfolio and trading read models ------------------------------------------------------
@pytest.fixture
def fixed_market(monkeypatch: pytest.MonkeyPatch) -> None:
    """The market the trade handler sees (the portfolio tests' fixed prices)."""
    from portfolio import market
    from tests.portfolio.support import MARKET

    monkeypatch.setattr(market, "snapshot", lambda: market.MarketSnapshot(MARKET.pairs, dict(MARKET.prices)))


@pytest.fixture
def trader(django_user_model, fixed_market):
    """Ann: a deposit, BTC and ETH bought, some BTC sold, through the bus (projections run on commit)."""
    from portfolio.commands import DepositFunds
    from tests.portfolio.support import ExecuteTradeFactory

    ann = django_user_model.objects.create_user("ann", password="pw-ann")
    actor = Actor(user_id=ann.pk)
    command_bus.dispatch(DepositFunds(user_id=ann.pk, amount=Decimal("30000.5")), actor=actor)
    command_bus.dispatch(ExecuteTradeFactory(user_id=ann.pk, amount=Decimal("0.3")), actor=actor)
    command_bus.dispatch(ExecuteTradeFactory(user_id=ann.pk, pair="ETH/USD", price=Decimal("2500"),
                                             amount=Decimal("2")), actor=actor)
    command_bus.dispatch(ExecuteTradeFactory(user_id=ann.pk, side="sell", price=Decimal("50000"),
                                             amount=Decimal("0.1")), actor=actor)
    return ann


@pytest.fixture
def staff_viewer(django_user_model):
    """Staff, not superuser, allowed to view portfolios only (no add/change/delete permission)."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("vera", password="pw-vera", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_portfolio", "view_position"]))
    return user


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client
