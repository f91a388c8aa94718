"""Check ``portfolio_events``: portfolio cash and positions equal the fold of their events."""
from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal

import pytest
from django.core.management import call_command

from cqrs_core import projections as proj
from cqrs_core.bus import command_bus
from cqrs_core.commands import Actor
from cqrs_core.ops_models import ReconciliationRun
from cqrs_core.reconciliation import _CHECKS, get_check, run_checks
from portfolio.commands import DepositFunds
from portfolio.models import Portfolio, Position
from portfolio.reconciliation import CHECK, PROJECTION

from .conftest import WITH_PROJECTIONS

pytestmark = WITH_PROJECTIONS


@pytest.fixture
def no_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Judge every stream at once (the registered window would skip the ones a test just wrote)."""
    monkeypatch.setitem(_CHECKS, CHECK, dataclasses.replace(get_check(CHECK), window=0.0))


def deposit(user_id: int, amount: str) -> None:
    command_bus.dispatch(DepositFunds(user_id=user_id, amount=Decimal(amount)), actor=Actor(user_id=user_id))


def run(**kwargs) -> ReconciliationRun:
    (result,) = run_checks([CHECK], **kwargs)
    return result


def test_a_clean_state_passes(trader, no_window, django_user_model) -> None:
    other = django_user_model.objects.create_user("ben")
    deposit(other.pk, "12.5")
    result = run()
    assert result.ok, result.details
    assert (result.details["portfolios"], result.details["checked"], result.details["differing"]) == (2, 2, 0)


def test_corrupted_cash_and_position_are_found_recorded_and_logged(trader, no_window, caplog) -> None:
    cash = Portfolio.objects.get(pk=trader.pk).cash
    Portfolio.objects.filter(pk=trader.pk).update(cash=cash + Decimal("0.000000000000000001"))
    Position.objects.filter(portfolio_id=trader.pk, asset="BTC").update(average_cost=Decimal("1"))
    with caplog.at_level(logging.ERROR, logger="ledgerline.reconciliation"):
        result = run(repair=False)
    assert not result.ok and not result.repaired
    (example,) = result.details["examples"]
    assert example["user_id"] == trader.pk
    live, events = example["fields"]["cash"]["live"], example["fields"]["cash"]["events"]
    assert list(example["fields"]) == ["cash"] and Decimal(live) - Decimal(events) == Decimal("1e-18")
    assert Decimal(events) == cash
    assert example["positions"] == {"BTC": {"average_cost": {"live": "1", "events": "50000"}}}
    assert f"{CHECK} failed" in caplog.text
    assert ReconciliationRun.objects.filter(check_name=CHECK, ok=False).count() == 1


def test_missing_and_extra_rows_are_found(trader, no_window) -> None:
    Position.objects.filter(portfolio_id=trader.pk, asset="ETH").delete()
    Position.objects.create(portfolio_id=trader.pk, asset="DOGE", quantity=Decimal(1), average_cost=Decimal(1))
    (example,) = run(repair=False).details["examples"]
    assert example["positions"] == {"DOGE": {"row": "extra"}, "ETH": {"row": "missing"}}

    Portfolio.objects.filter(pk=trader.pk).delete()
    (example,) = run(repair=False).details["examples"]
    assert example == {"user_id": trader.pk, "row": "missing"}


def test_a_failure_is_repaired_by_rebuilding_the_portfolios(trader, no_window) -> None:
    Portfolio.objects.filter(pk=trader.pk).update(fees_paid=Decimal("0"), realised_pnl=Decimal("-1"))
    result = run(repair=True)
    assert not result.ok and result.repaired
    assert result.details["repair"]["rebuilt"][0]["projection"] == PROJECTION and result.details["repair"]["ok_after"]
    assert run().ok
    assert Portfolio.objects.get(pk=trader.pk).fees_paid > 0


def test_streams_inside_the_window_or_beyond_the_checkpoint_are_skipped(trader, no_window, monkeypatch) -> None:
    Portfolio.objects.filter(pk=trader.pk).update(cash=Decimal("1"))
    monkeypatch.setitem(_CHECKS, CHECK, dataclasses.replace(get_check(CHECK), window=300.0))
    within = run()
    assert within.ok and within.details["skipped_recent"] == 1 and within.details["checked"] == 0

    monkeypatch.setitem(_CHECKS, CHECK, dataclasses.replace(get_check(CHECK), window=0.0))
    proj.run_projection(PROJECTION)
    proj.pause(PROJECTION)
    deposit(trader.pk, "1")  # beyond the paused projection's checkpoint: not judged yet
    beyond = run()
    assert beyond.ok and beyond.details["skipped_recent"] == 1
    proj.resume(PROJECTION)
    proj.run_projection(PROJECTION)
    assert not run().ok  # now caught up, the corrupted cash shows


def test_a_sample_of_the_portfolios_is_checked(trader, no_window, settings, django_user_model) -> None:
    for name in ("ben", "cy"):
        deposit(django_user_model.objects.create_user(name).pk, "3")
    settings.PORTFOLIO_RECONCILE_SAMPLE = 2
    result = run()
    assert result.ok and (result.details["portfolios"], result.details["sampled"]) == (3, 2)


def test_the_check_is_registered_for_beat_and_the_command_line(capsys) -> None:
    call_command("reconcile", "--list")
    assert CHECK in capsys.readouterr().out
    assert get_check(CHECK).window > 0
