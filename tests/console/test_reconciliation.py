"""Reconciliation: a corrupted read-model row is found, recorded, reported and repaired by a rebuild."""
from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from cqrs_core.ops_models import ReconciliationRun
from cqrs_core.reconciliation import Outcome, _CHECKS, register_check, run_checks, verify
from cqrs_core.sagas.models import SagaInstance
from cqrs_core.tasks import reconcile
from tests.bus_app.models import AccountBalance, LedgerEntry

from .conftest import BALANCES, LEDGER, WITH_PROJECTIONS, history

pytestmark = WITH_PROJECTIONS


def corrupt_a_balance() -> uuid.UUID:
    account = history()[0]
    AccountBalance.objects.filter(account_id=account).update(balance=Decimal("999.5"))
    return account


def test_verify_finds_nothing_on_live_rows_and_changes_nothing() -> None:
    history()
    before = list(AccountBalance.objects.order_by("account_id").values_list())
    for name in (BALANCES, LEDGER, "bus_app.owners"):
        result = verify(name)
        assert result.ok and result.events > 0, result.as_dict()
    assert list(AccountBalance.objects.order_by("account_id").values_list()) == before


def test_verify_reports_changed_missing_and_extra_rows() -> None:
    account = corrupt_a_balance()
    LedgerEntry.objects.filter(account_id=account).first().delete()
    result = verify(BALANCES)
    (diff,) = [m for m in result.models if m.count]
    assert diff.changed == [{"pk": str(account), "fields": {"balance": {"live": "999.5", "replay": "6.75"}}}]
    ledger = verify(LEDGER)
    (entries,) = ledger.models
    assert len(entries.missing) == 1 and not entries.extra and entries.missing[0]["account_id"] == str(account)


def test_a_corrupted_row_fails_the_check_is_logged_and_recorded_then_repaired(caplog) -> None:
    account = corrupt_a_balance()
    with caplog.at_level(logging.ERROR, logger="ledgerline.reconciliation"):
        (run,) = run_checks(["projections_replay"], repair=False)
    assert not run.ok and not run.repaired and run.details["differing"] == [BALANCES]
    assert "projections_replay failed" in caplog.text
    assert AccountBalance.objects.get(account_id=account).balance == Decimal("999.5")

    (run,) = run_checks(["projections_replay"], repair=True)
    assert not run.ok and run.repaired and run.details["repair"]["ok_after"] is True
    assert AccountBalance.objects.get(account_id=account).balance == Decimal("6.75")
    assert verify(BALANCES).ok
    assert list(ReconciliationRun.objects.order_by("started_at").values_list("ok", "repaired")) == [
        (False, False), (False, True)]


def test_verify_projections_command_prints_the_difference_and_exits_non_zero_until_repaired(capsys) -> None:
    account = corrupt_a_balance()
    with pytest.raises(CommandError, match="read models differ from a replay: bus_app.balances"):
        call_command("verify_projections", BALANCES, LEDGER)
    out = capsys.readouterr().out
    assert "bus_app.balances: DIFFERS" in out and "bus_app.ledger: ok" in out
    assert f"changed {account}: balance: live 999.5 != replay 6.75" in out

    with pytest.raises(CommandError, match="failed checks: projections_replay"):
        call_command("reconcile", "projections_replay", "--repair")
    assert "projections_replay: FAILED, repaired" in capsys.readouterr().out

    call_command("verify_projections")
    assert re.search(r"all \d+ projection\(s\) equal their replay", capsys.readouterr().out)
    call_command("reconcile", "projections_replay")
    assert "projections_replay: ok" in capsys.readouterr().out


def test_overdue_sagas_and_lag_checks() -> None:
    history(accounts=1, deposits=1)
    now = timezone.now()
    SagaInstance.objects.create(id=uuid.uuid4(), saga_type="tests.Late", status=SagaInstance.Status.RUNNING,
                                started_at=now - dt.timedelta(hours=2), deadline_at=now - dt.timedelta(hours=1))
    lag_run, sagas_run = run_checks(["projection_lag", "sagas_overdue"])
    assert lag_run.ok, lag_run.details
    assert not sagas_run.ok and sagas_run.details["overdue"] == 1


def test_contexts_register_their_own_checks_and_beat_runs_only_due_ones(monkeypatch) -> None:
    calls = []
    monkeypatch.setitem(_CHECKS, "tests.always_bad", None)  # restored after the test

    @register_check("tests.always_bad", every=3600, window=0)
    def always_bad(check) -> Outcome:
        calls.append(check.name)
        return Outcome(False, {"why": "on purpose"})

    assert "tests.always_bad" in reconcile()
    assert "tests.always_bad" not in reconcile()  # not due again within its hour
    assert calls == ["tests.always_bad"]
    assert ReconciliationRun.objects.filter(check_name="tests.always_bad", ok=False).count() == 1
