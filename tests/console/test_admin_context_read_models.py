"""The read models of strategies, rebalances and yield in the admin: read-only, linked to their events,
and the protocol update as an operator command through the bus."""
from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

from cqrs_core.admin.streams import stream_url
from cqrs_core.bus import command_bus
from cqrs_core.commands import Actor
from cqrs_core.models import StoredEvent
from portfolio.commands import RebalancePortfolio
from portfolio.models import Rebalance
from trading.events import StrategyRules
from trading.models import Strategy, StrategySignal
from trading.strategy_commands import CreateStrategy, ExecuteStrategySignal
from yield_farming.catalogue import UpdateProtocol  # noqa: F401  (the command the form sends)
from yield_farming.commands import ExecuteYieldStrategy
from yield_farming.feed import load_protocols
from yield_farming.models import Protocol, YieldPosition, YieldStrategy
from yield_farming.state import CATALOGUE_STREAM

from .conftest import WITH_PROJECTIONS, client_of

pytestmark = WITH_PROJECTIONS

MODELS = (Strategy, StrategySignal, Rebalance, Protocol, YieldStrategy, YieldPosition)


def admin_url(model, name: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}", args=args)


@pytest.fixture
def activity(trader) -> dict[str, object]:
    """Ann's strategy with a signal, a planned rebalance and a yield strategy, all through the bus."""
    actor = Actor(user_id=trader.pk)
    strategy_id, rebalance_id, yield_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    load_protocols()
    command_bus.dispatch(CreateStrategy(strategy_id=strategy_id, owner_id=trader.pk, name="BTC dips",
                                        rules=StrategyRules(allowed_pairs=("BTC/USD",)), risk_profile="moderate"),
                         actor=actor)
    command_bus.dispatch(ExecuteStrategySignal(strategy_id=strategy_id, user_id=trader.pk, signal_id=uuid.uuid4(),
                                               trade_id=uuid.uuid4(), pair="ETH/USD", side="buy", amount=Decimal("0.1"),
                                               price=Decimal("2500")), actor=actor)
    command_bus.dispatch(RebalancePortfolio(user_id=trader.pk, rebalance_id=rebalance_id,
                                            targets={"BTC": Decimal(40), "USD": Decimal(60)}), actor=actor)
    command_bus.dispatch(ExecuteYieldStrategy(user_id=trader.pk, strategy_id=yield_id, protocols=("any",),
                                              amount=Decimal(2000), risk_tolerance="moderate"), actor=actor)
    return {"strategy": strategy_id, "rebalance": rebalance_id, "yield": yield_id, "user": trader.pk}


def test_each_read_model_lists_and_shows_its_rows_with_event_links(activity, admin_client_olivia) -> None:
    for model in MODELS:
        assert model.objects.exists(), f"{model.__name__}: the fixture made no row"
        changelist = admin_client_olivia.get(admin_url(model, "changelist"))
        assert changelist.status_code == 200, model
        page = admin_client_olivia.get(admin_url(model, "change", model.objects.first().pk))
        assert page.status_code == 200, model
        assert "/admin/ledgerline/streams/" in page.content.decode(), f"{model.__name__} has no history link"
    strategy_page = admin_client_olivia.get(admin_url(Strategy, "change", activity["strategy"])).content.decode()
    strategy_stream = f"strategy-{activity['strategy']}"
    assert f'href="{stream_url(strategy_stream)}"' in strategy_page
    signal = StrategySignal.objects.get()
    assert signal.outcome == "rejected" and signal.reason == "pair_not_allowed"


def test_the_new_read_models_refuse_add_change_and_delete(activity, admin_client_olivia) -> None:
    for model in MODELS:
        obj = model.objects.first()
        assert admin_client_olivia.get(admin_url(model, "add")).status_code == 403, model
        assert admin_client_olivia.post(admin_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
        assert model.objects.filter(pk=obj.pk).exists()


def test_non_staff_cannot_open_them(activity, trader) -> None:
    client = client_of(trader)
    for model in MODELS:
        page = client.get(admin_url(model, "changelist"))
        assert page.status_code == 302 and "/admin/login/" in page["Location"]


def test_an_operator_updates_a_protocol_through_the_bus(activity, superuser, admin_client_olivia) -> None:
    protocol = Protocol.objects.order_by("slug").first()
    url = reverse("admin:yield_farming_protocol_command", args=[protocol.slug, "update"])
    form = admin_client_olivia.get(url)
    assert form.status_code == 200
    command_id = re.search(r'name="command_id" value="([0-9a-f-]{36})"', form.content.decode()).group(1)

    done = admin_client_olivia.post(url, {"command_id": command_id, "apy": "7.25", "tvl": str(protocol.tvl),
                                          "audited": "on", "risk_score": "2"})

    assert done.status_code == 302, done.content.decode()[:2000]
    event = StoredEvent.objects.get(command_id=command_id)
    assert (event.stream_id, event.actor_id) == (CATALOGUE_STREAM, superuser.pk)
    protocol.refresh_from_db()
    assert (protocol.apy, protocol.risk_score, protocol.audited) == (Decimal("7.25"), 2, True)


def test_a_refused_protocol_update_is_a_form_error_and_writes_nothing(activity, admin_client_olivia) -> None:
    protocol = Protocol.objects.order_by("slug").first()
    url = reverse("admin:yield_farming_protocol_command", args=[protocol.slug, "update"])
    command_id = re.search(r'name="command_id" value="([0-9a-f-]{36})"',
                           admin_client_olivia.get(url).content.decode()).group(1)
    before = StoredEvent.objects.count()

    page = admin_client_olivia.post(url, {"command_id": command_id, "apy": "-1", "tvl": "1", "risk_score": "2"})

    assert page.status_code == 200 and "(code: " in page.content.decode()
    assert StoredEvent.objects.count() == before
