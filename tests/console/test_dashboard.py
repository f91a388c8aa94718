"""The dashboard: throughput per minute, refusals by code, lag, sagas, dead letters, checks."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from cqrs_core.bus import command_bus
from cqrs_core.errors import DomainError
from cqrs_core.ops_models import CommandFailureMinute
from cqrs_core.reconciliation import run_checks
from tests.bus_app.commands import Withdraw

from .conftest import USER, WITH_PROJECTIONS, history

pytestmark = WITH_PROJECTIONS


def test_refusals_are_counted_per_minute_and_code() -> None:
    account = history(accounts=1, deposits=1)[0]
    for _ in range(3):
        with pytest.raises(DomainError):
            command_bus.dispatch(Withdraw(account_id=account, amount=Decimal("1000")), actor=USER)
    row = CommandFailureMinute.objects.get()
    assert (row.command_type, row.code, row.count) == ("tests.Withdraw", "insufficient_funds", 3)
    assert row.minute.second == 0 and row.total_ms > 0


def test_dashboard_renders_the_figures(admin_client_olivia) -> None:
    account = history(accounts=2, deposits=2)[0]  # 2 opens + 4 deposits succeed
    with pytest.raises(DomainError):
        command_bus.dispatch(Withdraw(account_id=account, amount=Decimal("1000")), actor=USER)
    run_checks(["sagas_overdue"])

    page = admin_client_olivia.get(reverse("admin:ledgerline-dashboard"))
    html = page.content.decode()
    assert page.status_code == 200
    assert re.search(r'id="ll-commands-total">6<', html)
    assert re.search(r'id="ll-commands-per-minute">0\.10<', html)
    assert re.search(r'id="ll-events-total">6<', html)
    assert re.search(r"<td>insufficient_funds</td><td class=\"ll-num\">1</td><td class=\"ll-num\">14\.3%</td>", html)
    assert "bus_app.balances" in html and "sagas_overdue" in html and "no sagas" in html
    assert html.count('class="ll-bar"') == 120  # 60 minutes of commands and of events


def test_dashboard_is_for_staff_only(client, django_user_model) -> None:
    django_user_model.objects.create_user("pat", password="pw")
    client.login(username="pat", password="pw")
    page = client.get(reverse("admin:ledgerline-dashboard"))
    assert page.status_code == 302 and "/admin/login/" in page["Location"]
