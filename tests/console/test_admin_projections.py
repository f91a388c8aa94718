"""The projections page: lag and progress columns, pause/resume/cancel, background rebuilds; dead letters."""
from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.urls import reverse

from cqrs_core import projections as proj
from cqrs_core.admin.projections import wait_for_background_rebuilds
from cqrs_core.bus import command_bus
from cqrs_core.models import DeadLetter, ProjectionState
from cqrs_core.projections import Status, run_projection
from cqrs_core.store import append, head_position, stream_version
from tests.bus_app.commands import Deposit
from tests.bus_app.events import FundsDeposited
from tests.bus_app.models import AccountBalance
from tests.bus_app.projections import POISON_AMOUNTS

from .conftest import BALANCES, LEDGER, PROJECTIONS_URL, USER, WITH_PROJECTIONS, act, history

pytestmark = WITH_PROJECTIONS


def state(name: str) -> ProjectionState:
    return ProjectionState.objects.get(name=name)


def balances_rows() -> Counter:
    return Counter(AccountBalance.objects.values_list("account_id", "balance", "transactions", "position"))


def many_deposits(count: int) -> None:
    """Ten accounts and a few deposits through the bus, then ``count`` more deposits appended in bulk.

    The bulk goes straight to the store (one append per account stream, about 8 ms per command
    saved): the projections see ordinary stored events; then one run per projection.
    """
    accounts = history(accounts=10, deposits=1)
    for n, account in enumerate(accounts):
        deposits = [FundsDeposited(account_id=account, amount=Decimal(f"{i % 7 + 1}.01"))
                    for i in range(n, count - len(accounts), len(accounts))]
        append(f"bus_app.account-{account}", deposits, stream_version(f"bus_app.account-{account}"))
    run_projection(BALANCES)
    run_projection(LEDGER)


def slowed(name: str, *, batch_size: int, pause: float) -> proj.Projection:
    """The registered projection with small batches and a short pause per event, so a rebuild is observable."""
    original = proj.get_projection(name)

    def apply(event, recorded) -> None:
        time.sleep(pause)
        original.apply(event, recorded)

    return dataclasses.replace(original, batch_size=batch_size, apply=apply)


def test_the_page_lists_checkpoint_head_lag_state_and_a_dead_letter_link(admin_client_olivia) -> None:
    history()
    page = admin_client_olivia.get(reverse(PROJECTIONS_URL))
    html = page.content.decode()
    assert page.status_code == 200
    for column in ("checkpoint", "head", "lag (events)", "lag (s)", "rebuild", "last error", "dead letters"):
        assert column in html.lower()
    row = re.search(r'<tr>.*?bus_app\.balances.*?</tr>', html, re.S).group(0)
    assert f'<td class="field-checkpoint">{head_position()}</td>' in row
    assert f'<td class="field-head">{head_position()}</td>' in row
    assert '<td class="field-lag_events">0</td>' in row and '<td class="field-status_display">running</td>' in row
    link = reverse("admin:cqrs_core_deadletter_changelist") + "?projection__exact=bus_app.balances"
    assert link in row and "0 pending" in row


def test_pause_resume_and_cancel_actions(admin_client_olivia) -> None:
    history()
    page = act(admin_client_olivia, "pause_projections", BALANCES, LEDGER)
    assert "Paused 2 projection(s)." in page.content.decode()
    assert state(BALANCES).status == state(LEDGER).status == Status.PAUSED

    page = act(admin_client_olivia, "resume_projections", BALANCES)
    assert "Resumed 1 projection(s)." in page.content.decode()
    assert state(BALANCES).status == Status.RUNNING and state(LEDGER).status == Status.PAUSED

    page = act(admin_client_olivia, "cancel_rebuilds", BALANCES)
    assert "None of the selected projections is rebuilding." in page.content.decode()
    ProjectionState.objects.filter(name=BALANCES).update(status=Status.REBUILDING)
    page = act(admin_client_olivia, "cancel_rebuilds", BALANCES)
    assert "Asked bus_app.balances to stop" in page.content.decode()
    assert state(BALANCES).rebuild_cancel_requested
    assert "(cancel requested)" in admin_client_olivia.get(reverse(PROJECTIONS_URL)).content.decode()
    recorded = LogEntry.objects.order_by("pk").values_list("user__username", "object_id", "change_message")
    assert list(recorded) == [("olivia", BALANCES, "paused"), ("olivia", LEDGER, "paused"),
                              ("olivia", BALANCES, "resumed"), ("olivia", BALANCES, "rebuild cancel requested")]


def test_background_rebuild_of_thousands_of_events_shows_progress_refuses_a_second_and_ends_equal(
        admin_client_olivia, monkeypatch: pytest.MonkeyPatch) -> None:
    many_deposits(2000)
    live = balances_rows()
    assert sum(row[2] for row in live.elements()) == 2000
    monkeypatch.setitem(proj._PROJECTIONS, BALANCES, slowed(BALANCES, batch_size=100, pause=0.0005))

    generation = state(BALANCES).generation
    started = time.monotonic()
    page = act(admin_client_olivia, "rebuild_projections", BALANCES)
    assert "Rebuild of bus_app.balances started in a background thread" in page.content.decode()
    assert time.monotonic() - started < 5, "the request returned before the rebuild ended"

    percents: list[float] = []
    refused = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        html = admin_client_olivia.get(reverse(PROJECTIONS_URL)).content.decode()
        found = re.search(r'class="rebuild-percent">([\d.]+)%</span> · [\d,]+ events/s · ETA [\d:?]+', html)
        if found:
            percents.append(float(found.group(1)))
            if not refused and 0 < percents[-1] < 90:
                again = act(admin_client_olivia, "rebuild_projections", BALANCES).content.decode()
                assert "us_app.balances is already being rebuilt" in again  # the admin capitalises messages and "not started again" in again
                refused = True
        now = state(BALANCES)
        if now.generation > generation and now.status == Status.RUNNING:
            break
        time.sleep(0.05)

    assert wait_for_background_rebuilds(60)
    assert refused, f"no progress seen between 0 and 90% (seen: {percents})"
    assert percents == sorted(percents) and any(0 < p < 100 for p in percents)
    after = state(BALANCES)
    assert after.status == Status.RUNNING and after.position == head_position() and after.rebuild_target is None
    assert balances_rows() == live
    started_by = LogEntry.objects.filter(object_id=BALANCES, change_message="rebuild started")
    assert list(started_by.values_list("user__username", flat=True)) == ["olivia"]  # the refused one is not noted


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="SQLite: the cancel's UPDATE waits for the write lock that the rebuild retakes batch "
                           "after batch, so it lands only after the rebuild ended (see the report)")
def test_cancel_stops_a_running_background_rebuild_paused(admin_client_olivia, monkeypatch) -> None:
    many_deposits(300)
    monkeypatch.setitem(proj._PROJECTIONS, BALANCES, slowed(BALANCES, batch_size=10, pause=0.002))
    act(admin_client_olivia, "rebuild_projections", BALANCES)
    deadline = time.monotonic() + 30
    while state(BALANCES).position == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    page = act(admin_client_olivia, "cancel_rebuilds", BALANCES)
    assert "Asked bus_app.balances to stop" in page.content.decode()
    assert wait_for_background_rebuilds(30)
    stopped = state(BALANCES)
    assert stopped.status == Status.PAUSED and 0 < stopped.position < head_position()


def test_dead_letter_retry_and_skip_record_the_admin_username(admin_client_olivia) -> None:
    account = history(accounts=1, deposits=1)[0]
    POISON_AMOUNTS.update({Decimal("13.13"), Decimal("14.14")})
    try:
        for amount in ("13.13", "14.14"):
            command_bus.dispatch(Deposit(account_id=account, amount=Decimal(amount)), actor=USER)
        first, second = DeadLetter.objects.filter(projection=LEDGER).order_by("position")
        page = admin_client_olivia.get(reverse(PROJECTIONS_URL)).content.decode()
        assert "2 pending" in page
        POISON_AMOUNTS.clear()
        changelist = "admin:cqrs_core_deadletter_changelist"
        page = act(admin_client_olivia, "retry_letters", str(first.pk), url_name=changelist)
        assert "1 of 1 dead letter(s) now apply." in page.content.decode()
        act(admin_client_olivia, "skip_letters", str(second.pk), url_name=changelist)
    finally:
        POISON_AMOUNTS.clear()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.resolved_by) == (DeadLetter.Status.RESOLVED, "olivia")
    assert (second.status, second.resolved_by) == (DeadLetter.Status.SKIPPED, "olivia")
