"""A stream's full history from any of its events: version order, readable JSON, keyset pages, no counts."""
from __future__ import annotations

import html
import re
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cqrs_core.admin.streams import PER_PAGE, stream_url
from cqrs_core.models import StoredEvent
from cqrs_core.store import append
from tests.bus_app.events import AccountOpened, FundsDeposited

from .conftest import client_of, history

pytestmark = pytest.mark.django_db

EVENTS_URL = "admin:cqrs_core_storedevent_changelist"


def versions(page) -> list[int]:
    assert page.status_code == 200, page.status_code
    return [int(v) for v in re.findall(r'<tr id="v(\d+)"', page.content.decode())]


def link(page, element_id: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" id="{element_id}">', page.content.decode())
    return html.unescape(found.group(1)) if found else None


def long_stream(deposits: int = 120) -> str:
    """A stream of one account opened and ``deposits`` deposits, appended straight to the store."""
    account = uuid.uuid4()
    stream = f"bus_app.account-{account}"
    append(stream, [AccountOpened(account_id=account, owner_id=1, currency="USD")], 0)
    append(stream, [FundsDeposited(account_id=account, amount=Decimal(f"{i % 3 + 1}.5")) for i in range(deposits)], 1)
    return stream


def test_pages_through_a_stream_in_version_order_without_counting(admin_client_olivia) -> None:
    stream = long_stream()  # 121 events
    with CaptureQueriesContext(connection) as queries:
        first = admin_client_olivia.get(stream_url(stream))
    assert versions(first) == list(range(1, PER_PAGE + 1))
    assert not [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert "121 events in stream" in first.content.decode() and link(first, "ll-older") is None

    second = admin_client_olivia.get(link(first, "ll-newer"))
    assert versions(second) == list(range(PER_PAGE + 1, 2 * PER_PAGE + 1))
    last = admin_client_olivia.get(link(second, "ll-newer"))
    assert versions(last) == list(range(2 * PER_PAGE + 1, 122)) and link(last, "ll-newer") is None
    back = admin_client_olivia.get(link(last, "ll-older"))
    assert versions(back) == versions(second)


def test_opens_at_a_version_with_readable_json_and_filters(admin_client_olivia) -> None:
    stream = long_stream(deposits=60)
    page = admin_client_olivia.get(stream_url(stream, at=55))
    assert versions(page) == list(range(51, 62))
    text = html.unescape(page.content.decode())
    assert '<tr id="v55" class="ll-event ll-at">' in text
    assert '{\n  "account_id": ' in text and '"amount": "2.5"' in text  # indented, exact decimals

    only = admin_client_olivia.get(stream_url(stream), {"type": "bus_app.AccountOpened"})
    assert versions(only) == [1]
    twos = admin_client_olivia.get(stream_url(stream, amount="2.5"))
    assert versions(twos) == [v for v in range(2, 62) if (v - 2) % 3 == 1]


def test_every_event_page_links_its_streams_history(admin_client_olivia) -> None:
    account = history(accounts=1, deposits=2)[0]
    event = StoredEvent.objects.get(stream_id=f"bus_app.account-{account}", stream_version=2)
    page = admin_client_olivia.get(reverse("admin:cqrs_core_storedevent_change", args=[event.pk])).content.decode()
    assert f'href="{html.escape(stream_url(event.stream_id, at=2))}"' in page
    assert f"?q={event.command_id}" in page and f"?q={event.correlation_id}" in page
    listed = admin_client_olivia.get(reverse(EVENTS_URL)).content.decode()
    assert html.escape(stream_url(event.stream_id, at=2)) in listed


def test_streams_with_a_slash_and_unknown_streams(admin_client_olivia) -> None:
    append("bus_app.pair-BTC/USD", [AccountOpened(account_id=uuid.uuid4(), owner_id=1, currency="USD")], 0)
    assert versions(admin_client_olivia.get(stream_url("bus_app.pair-BTC/USD"))) == [1]
    assert admin_client_olivia.get(stream_url("no-such-stream")).status_code == 404


def test_the_stream_page_is_for_staff_only(django_user_model) -> None:
    stream = long_stream(deposits=1)
    page = client_of(django_user_model.objects.create_user("pat")).get(stream_url(stream))
    assert page.status_code == 302 and "/admin/login/" in page["Location"]


def test_event_list_filters_by_stream_context_type_and_date(admin_client_olivia) -> None:
    accounts = history(accounts=2, deposits=2)
    stream = f"bus_app.account-{accounts[0]}"

    def positions(**query) -> list[int]:
        page = admin_client_olivia.get(reverse(EVENTS_URL), query)
        assert page.status_code == 200
        return [int(p) for p in re.findall(r'<th class="field-position"><a [^>]+>(\d+)</a>', page.content.decode())]

    everything = positions()
    assert everything == sorted(everything, reverse=True) and len(everything) == 6  # newest first
    assert positions(stream=stream) == sorted(StoredEvent.objects.filter(stream_id=stream)
                                              .values_list("position", flat=True), reverse=True)
    assert len(positions(context="bus_app")) == 6 and positions(context="portfolio") == []
    assert len(positions(event_type="bus_app.FundsDeposited")) == 4
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)  # as the "Today" link has it
    assert len(positions(recorded_at__gte=str(midnight))) == 6
    assert positions(recorded_at__lt=str(midnight)) == []
    assert positions(q=stream) == positions(stream=stream)
    page = admin_client_olivia.get(reverse(EVENTS_URL), {"context": "bus_app"}).content.decode()
    assert "bus_app.FundsDeposited" in page and "portfolio.FundsDeposited" not in page  # types of that context
