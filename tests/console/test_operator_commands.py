"""Operator commands from admin forms: through the bus, as the operator, refusals as form errors writing nothing."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from cqrs_core.models import StoredEvent
from portfolio.models import Portfolio

from .conftest import WITH_PROJECTIONS, client_of

pytestmark = WITH_PROJECTIONS


def command_url(user_id: int, slug: str = "risk-limits") -> str:
    return reverse("admin:portfolio_portfolio_command", args=[user_id, slug])


def stream_events(user_id: int) -> list[tuple[str, int | None, dict]]:
    return list(StoredEvent.objects.filter(stream_id=f"portfolio-{user_id}").order_by("stream_version")
                .values_list("event_type", "actor_id", "data"))


def shown_command_id(client, user_id: int) -> str:
    page = client.get(command_url(user_id))
    assert page.status_code == 200
    return re.search(r'name="command_id" value="([0-9a-f-]{36})"', page.content.decode()).group(1)


def test_setting_risk_limits_dispatches_the_command_as_the_operator(trader, superuser, admin_client_olivia) -> None:
    change = reverse("admin:portfolio_portfolio_change", args=[trader.pk])
    assert command_url(trader.pk) in admin_client_olivia.get(change).content.decode()  # a button on the row's page
    command_id = shown_command_id(admin_client_olivia, trader.pk)
    before = len(stream_events(trader.pk))

    done = admin_client_olivia.post(command_url(trader.pk), {"command_id": command_id, "max_position_usd": "2500.5"})
    assert done.status_code == 302 and done["Location"] == change
    event_type, actor_id, data = stream_events(trader.pk)[-1]
    assert (event_type, actor_id, data["set_by"], data["max_position_usd"]) == (
        "portfolio.RiskLimitsSet", superuser.pk, superuser.pk, "2500.5")
    assert StoredEvent.objects.filter(command_id=command_id).count() == 1
    assert Portfolio.objects.get(pk=trader.pk).max_position_usd == Decimal("2500.5")  # projected on commit
    entry = LogEntry.objects.get(object_id=str(trader.pk))
    assert entry.user_id == superuser.pk and "portfolio.SetRiskLimits: 1 event(s)" in entry.change_message

    again = admin_client_olivia.post(command_url(trader.pk), {"command_id": command_id, "max_position_usd": "2500.5"},
                                     follow=True)
    assert "already done: replayed" in again.content.decode()
    assert len(stream_events(trader.pk)) == before + 1  # a double submit runs the command once


def test_a_refusal_is_a_form_error_with_its_code_and_writes_nothing(trader, admin_client_olivia) -> None:
    before = stream_events(trader.pk)
    command_id = shown_command_id(admin_client_olivia, trader.pk)
    page = admin_client_olivia.post(command_url(trader.pk), {"command_id": command_id, "max_position_usd": "0"})
    assert page.status_code == 200
    form = page.context["form"]
    assert form.errors["max_position_usd"] == [
        "Amounts and prices must be greater than zero. (code: amount_not_positive)"]
    assert "amount_not_positive" in page.content.decode()
    assert stream_events(trader.pk) == before
    assert not StoredEvent.objects.filter(command_id=command_id).exists()
    assert Portfolio.objects.get(pk=trader.pk).max_position_usd is None


def test_a_refusal_naming_no_field_is_shown_on_the_whole_form(trader, admin_client_olivia) -> None:
    user_id = trader.pk
    before = stream_events(user_id)
    trader.delete()  # the portfolio row stays; the handler's lookup finds no such user
    page = admin_client_olivia.post(command_url(user_id), {"command_id": shown_command_id(admin_client_olivia, user_id),
                                                           "max_position_usd": "100"})
    assert page.status_code == 200
    assert [e for e in page.context["form"].non_field_errors() if "(code: portfolio_not_found)" in e]
    assert stream_events(user_id) == before


def test_invalid_input_never_reaches_the_bus(trader, admin_client_olivia) -> None:
    before = stream_events(trader.pk)
    command_id = shown_command_id(admin_client_olivia, trader.pk)
    page = admin_client_olivia.post(command_url(trader.pk), {"command_id": command_id, "max_position_usd": "1e400"})
    assert page.status_code == 200 and page.context["form"].errors["max_position_usd"]
    assert stream_events(trader.pk) == before


def test_staff_with_view_permission_run_it_others_are_refused(trader, staff_viewer, django_user_model) -> None:
    viewer = client_of(staff_viewer)
    done = viewer.post(command_url(trader.pk), {"command_id": shown_command_id(viewer, trader.pk),
                                                "max_position_usd": "700"})
    assert done.status_code == 302
    assert stream_events(trader.pk)[-1][:2] == ("portfolio.RiskLimitsSet", staff_viewer.pk)
    before = stream_events(trader.pk)

    plain = client_of(trader)  # not staff: the admin sends them to log in, nothing runs
    for response in (plain.get(command_url(trader.pk)),
                     plain.post(command_url(trader.pk), {"command_id": "5f0c3f4e-8f55-4d5c-9a4b-0c2b0a7b9e11",
                                                         "max_position_usd": "1"})):
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    blind = client_of(django_user_model.objects.create_user("sam", password="pw", is_staff=True))
    assert blind.get(command_url(trader.pk)).status_code == 403  # staff without the view permission
    assert blind.post(command_url(trader.pk), {"command_id": "5f0c3f4e-8f55-4d5c-9a4b-0c2b0a7b9e12",
                                               "max_position_usd": "1"}).status_code == 403
    assert stream_events(trader.pk) == before


def test_unknown_commands_and_rows_are_404(trader, admin_client_olivia) -> None:
    assert admin_client_olivia.get(command_url(trader.pk, "no-such-command")).status_code == 404
    assert admin_client_olivia.get(command_url(987654)).status_code == 404
