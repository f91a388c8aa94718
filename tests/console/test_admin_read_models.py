"""Read models in the admin: read-only for everyone, searchable, filtered on indexes, linked to their events."""
from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cqrs_core.admin import ReadModelAdmin
from cqrs_core.admin.base import CappedCountPaginator, choices_filter, leads_an_index
from cqrs_core.admin.streams import event_url, stream_url
from cqrs_core.models import StoredEvent
from portfolio.models import Portfolio, Position
from trading.models import Trade

from .conftest import WITH_PROJECTIONS, client_of

pytestmark = WITH_PROJECTIONS

MODELS = {"portfolio": Portfolio, "position": Position, "trade": Trade}


def admin_url(model, name: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}", args=args)


def row_links(page) -> list[str]:
    """The text of each changelist row's link to its page."""
    return re.findall(r'<th class="field-[a-z_]+[^"]*"><a href="[^"]+/change/[^"]*">([^<]+)</a>', page.content.decode())


def rows() -> tuple:
    return (list(Portfolio.objects.order_by("pk").values_list()), list(Position.objects.order_by("pk").values_list()),
            list(Trade.objects.order_by("pk").values_list()))


@pytest.mark.parametrize("name", MODELS)
def test_read_models_refuse_add_change_and_delete_even_for_a_superuser(name, trader, admin_client_olivia) -> None:
    model = MODELS[name]
    obj = model.objects.first()
    before = rows()

    assert admin_client_olivia.get(admin_url(model, "add")).status_code == 403
    assert admin_client_olivia.post(admin_url(model, "add"), {}).status_code == 403
    assert admin_client_olivia.get(admin_url(model, "change", obj.pk)).status_code == 200  # viewing is allowed
    assert admin_client_olivia.post(admin_url(model, "change", obj.pk), {"cash": "1"}).status_code == 403
    assert admin_client_olivia.post(admin_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    changelist = admin_client_olivia.get(admin_url(model, "changelist"))
    assert changelist.status_code == 200 and b"delete_selected" not in changelist.content
    refused = admin_client_olivia.post(admin_url(model, "changelist"),
                                       {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"})
    assert refused.status_code in (200, 302)  # no such action: Django says so and deletes nothing
    assert rows() == before


def test_non_staff_are_sent_to_the_login_page(trader) -> None:
    client = client_of(trader)
    for model in MODELS.values():
        page = client.get(admin_url(model, "changelist"))
        assert page.status_code == 302 and "/admin/login/" in page["Location"]


def test_staff_need_the_view_permission_of_each_read_model(trader, staff_viewer) -> None:
    client = client_of(staff_viewer)
    assert client.get(admin_url(Portfolio, "changelist")).status_code == 200
    assert client.get(admin_url(Trade, "changelist")).status_code == 403


def test_a_portfolio_links_its_stream_and_last_event(trader, admin_client_olivia) -> None:
    page = admin_client_olivia.get(admin_url(Portfolio, "changelist")).content.decode()
    applied = Portfolio.objects.get(pk=trader.pk).position  # the last event the projection applied
    assert StoredEvent.objects.get(position=applied).stream_id == f"portfolio-{trader.pk}"
    assert f'href="{stream_url(f"portfolio-{trader.pk}")}"' in page
    assert f'href="{event_url(applied)}"' in page
    assert "<td class=\"field-username\">ann</td>" in page

    change = admin_client_olivia.get(admin_url(Portfolio, "change", trader.pk)).content.decode()
    assert f'href="{stream_url(f"portfolio-{trader.pk}")}"' in change
    assert "BTC" in change and "ETH" in change  # the positions inline


def test_a_trade_links_the_trade_executed_event_at_its_position(trader, admin_client_olivia) -> None:
    trade = Trade.objects.filter(side="sell").get()
    page = admin_client_olivia.get(admin_url(Trade, "change", trade.pk)).content.decode()
    assert f'href="{event_url(trade.position)}"' in page
    event = admin_client_olivia.get(event_url(trade.position)).content.decode()
    assert "trading.TradeExecuted" in event and str(trade.trade_id) in event


def test_a_position_links_its_portfolio_stream_filtered_to_its_asset(trader, admin_client_olivia) -> None:
    position = Position.objects.get(asset="ETH")
    page = admin_client_olivia.get(admin_url(Position, "changelist")).content.decode()
    url = stream_url(f"portfolio-{trader.pk}", asset="ETH")
    assert f'href="{url.replace("&", "&amp;")}"' in page
    history = html.unescape(admin_client_olivia.get(url).content.decode())
    assert history.count('class="ll-event') == 1 and '"asset": "ETH"' in history
    assert position.quantity == Decimal("2")


def test_search_by_user_id_username_and_trade_id(trader, admin_client_olivia, django_user_model) -> None:
    other = django_user_model.objects.create_user("zed")
    from cqrs_core.bus import command_bus
    from cqrs_core.commands import Actor
    from portfolio.commands import DepositFunds

    command_bus.dispatch(DepositFunds(user_id=other.pk, amount=Decimal("5")), actor=Actor(user_id=other.pk))

    def shown(url: str, q: str) -> list[str]:
        return row_links(admin_client_olivia.get(url, {"q": q}))

    assert shown(admin_url(Portfolio, "changelist"), "ann") == [str(trader.pk)]
    assert shown(admin_url(Portfolio, "changelist"), str(other.pk)) == [str(other.pk)]
    assert shown(admin_url(Portfolio, "changelist"), "nobody") == []
    trade = Trade.objects.filter(pair="ETH/USD").get()
    assert len(shown(admin_url(Trade, "changelist"), str(trade.trade_id))) == 1
    assert admin_client_olivia.get(admin_url(Trade, "changelist"), {"q": "not-a-uuid"}).status_code == 200
    assert len(shown(admin_url(Position, "changelist"), str(trader.pk))) == 2


def test_the_trade_pair_filter_offers_known_pairs_and_keeps_one(trader, admin_client_olivia) -> None:
    assert len(row_links(admin_client_olivia.get(admin_url(Trade, "changelist")))) == 3
    page = admin_client_olivia.get(admin_url(Trade, "changelist"), {"pair": "ETH/USD"})
    assert len(row_links(page)) == 1 and "1 trade" in page.content.decode()
    assert "SOL/USD" in page.content.decode()  # a choice from the registry, though nobody traded it


def test_a_list_filter_without_an_index_fails_the_system_check() -> None:
    class Unindexed(ReadModelAdmin):
        list_filter = ("side", "pair", choices_filter("fee", "fee", lambda: ["1"]),
                       ("executed_at", admin.DateFieldListFilter))

    errors = Unindexed(Trade, admin.site).check()
    assert [e.id for e in errors] == ["ledgerline.E001"] * 3
    assert ["'side'" in errors[0].msg, "'fee'" in errors[1].msg, "'executed_at'" in errors[2].msg] == [True] * 3
    assert leads_an_index(Trade, "pair") and leads_an_index(Trade, "position") and not leads_an_index(Trade, "fee")
    call_command("check")  # every registered admin passes


def test_changelists_never_count_a_whole_table(trader, admin_client_olivia, monkeypatch) -> None:
    monkeypatch.setattr(CappedCountPaginator, "cap", 2)
    urls = [admin_url(m, "changelist") for m in (*MODELS.values(), StoredEvent)]
    with CaptureQueriesContext(connection) as queries:
        pages = [admin_client_olivia.get(url) for url in urls]
    assert all(page.status_code == 200 for page in pages)
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts), counts
    assert "2 stored events" in pages[-1].content.decode()


def test_market_candles_and_buckets_are_read_only_and_link_their_pair_stream(admin_client_olivia) -> None:
    import datetime as dt

    from cqrs_core.bus import command_bus
    from market.commands import RecordCandles
    from market.models import Candle, PairHourBucket
    from tests.market.conftest import flat

    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    command_bus.dispatch(RecordCandles(pair="BTC/USD", timeframe="1m", candles=tuple(
        flat(start + dt.timedelta(minutes=i), f"{100 + i}") for i in range(3))))
    candle, bucket = Candle.objects.order_by("open_time").first(), PairHourBucket.objects.get()
    for model, obj in ((Candle, candle), (PairHourBucket, bucket)):
        page = admin_client_olivia.get(admin_url(model, "changelist"), {"pair": "BTC/USD"})
        assert len(row_links(page)) == (3 if model is Candle else 1)
        assert f'href="{stream_url("market-BTC/USD")}"' in page.content.decode()
        assert admin_client_olivia.get(admin_url(model, "add")).status_code == 403
        assert admin_client_olivia.post(admin_url(model, "change", obj.pk), {}).status_code == 403
        assert admin_client_olivia.post(admin_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert f'href="{event_url(candle.position)}"' in admin_client_olivia.get(
        admin_url(Candle, "change", candle.pk)).content.decode()
    assert Candle.objects.count() == 3
