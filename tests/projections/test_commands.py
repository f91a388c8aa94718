"""``manage.py projections`` and ``manage.py rebuild_projections``: output, effects, exit codes."""
from __future__ import annotations

import io
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from cqrs_core.models import ProjectionState
from cqrs_core.projections import Status, ensure_states, pause, projections
from cqrs_core.store import head_position

from .conftest import BALANCES, LEDGER, OWNERS, balances_rows, deposit, ledger_rows, open_account, owners_rows

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def history() -> None:
    for _ in range(2):
        account = open_account()
        for amount in ("1.50", "2.25", "3"):
            deposit(account, amount)


def test_the_status_table_lists_every_projection() -> None:
    history()
    out = run("projections")
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["name", "mode", "status", "checkpoint", "head"]
    for proj in projections():
        row = next(line for line in lines if line.startswith(proj.name + " "))
        assert proj.mode in row and "running" in row
    ledger_row = next(line for line in lines if line.startswith(LEDGER + " ")).split()
    assert ledger_row[3] == ledger_row[4] == str(head_position()) and ledger_row[5] == "0"


def test_check_fails_on_a_failed_or_lagging_projection_and_passes_when_caught_up() -> None:
    history()
    assert "all projections healthy" in run("projections", "--check", "--max-lag-events", "0")

    ProjectionState.objects.filter(name=BALANCES).update(status=Status.FAILED, last_error="boom")
    with pytest.raises(CommandError, match="bus_app.balances is failed"):
        run("projections", "--check")
    ProjectionState.objects.filter(name=BALANCES).update(status=Status.RUNNING, last_error="")

    pause(LEDGER)
    history()  # 8 positions: 2 accounts opened (no ledger rows, still positions to pass) and 6 deposits
    with pytest.raises(CommandError, match=r"bus_app.ledger is 8 events behind \(max 7\)"):
        run("projections", "--check", "--max-lag-events", "7")
    with pytest.raises(CommandError, match=r"bus_app.ledger is \d+\.\ds behind"):
        run("projections", "--check", "--max-lag-events", "100", "--max-lag-seconds", "0")
    assert "all projections healthy" in run("projections", "--check", "--max-lag-events", "8")


def test_run_brings_async_projections_up_to_date() -> None:
    history()
    ProjectionState.objects.filter(name=LEDGER).update(status=Status.PAUSED)
    history()
    ProjectionState.objects.filter(name=LEDGER).update(status=Status.RUNNING)
    out = run("projections", "--run", "--check", "--max-lag-events", "0")
    assert "ran bus_app.ledger: 6 applied" in out and "ran bus_app.owners" not in out
    assert sum(ledger_rows().values()) == 12


def test_dry_run_changes_nothing() -> None:
    history()
    before = (balances_rows(), ledger_rows(), owners_rows(), list(ProjectionState.objects.values()))
    out = run("rebuild_projections", "--dry-run", "--noinput")
    assert f"{LEDGER}: would replay 6 events" in out
    assert f"{OWNERS}: would replay 2 events" in out
    assert (balances_rows(), ledger_rows(), owners_rows(), list(ProjectionState.objects.values())) == before


def test_rebuild_via_the_command_equals_live() -> None:
    history()
    live = (balances_rows(), ledger_rows(), owners_rows())
    generations = dict(ProjectionState.objects.values_list("name", "generation"))
    out = run("rebuild_projections", "--noinput", "--batch-size", "2")
    for name in (BALANCES, LEDGER, OWNERS):
        assert f"{name}: 100.0%" in out, out
        assert f"checkpoint {head_position()}, running" in out
    assert (balances_rows(), ledger_rows(), owners_rows()) == live
    assert all(ProjectionState.objects.get(name=n).generation == g + 1 for n, g in generations.items())

    run("rebuild_projections", LEDGER, "--noinput")
    assert ledger_rows() == live[1]
    with pytest.raises(CommandError, match="no projection named 'nope'"):
        run("rebuild_projections", "nope", "--noinput")


def test_without_noinput_and_no_terminal_it_refuses_with_exit_code_2(monkeypatch: pytest.MonkeyPatch) -> None:
    history()
    live = ledger_rows()
    monkeypatch.setattr(sys, "stdin", io.StringIO("yes\n"))
    with pytest.raises(CommandError, match="--noinput") as refused:
        run("rebuild_projections", LEDGER)
    assert refused.value.returncode == 2
    assert ledger_rows() == live


def test_on_a_terminal_it_asks_and_no_means_no(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    history()
    generation = ProjectionState.objects.get(name=LEDGER).generation
    monkeypatch.setattr(sys, "stdin", Terminal("no\n"))
    with pytest.raises(CommandError, match="cancelled"):
        run("rebuild_projections", LEDGER)
    assert ProjectionState.objects.get(name=LEDGER).generation == generation
    monkeypatch.setattr(sys, "stdin", Terminal("yes\n"))
    run("rebuild_projections", LEDGER)
    assert ProjectionState.objects.get(name=LEDGER).generation == generation + 1


def test_a_concurrent_rebuild_is_refused() -> None:
    history()
    live = ledger_rows()
    ensure_states()
    ProjectionState.objects.filter(name=LEDGER).update(status=Status.REBUILDING, rebuild_heartbeat_at=timezone.now())
    err = io.StringIO()
    with pytest.raises(CommandError, match="not rebuilt: bus_app.ledger"):
        call_command("rebuild_projections", LEDGER, "--noinput", stdout=io.StringIO(), stderr=err)
    assert "being rebuilt" in err.getvalue()
    assert ledger_rows() == live


def test_progress_on_a_terminal_is_one_redrawn_line() -> None:
    from django.core.management.base import OutputWrapper

    from cqrs_core.management.commands.rebuild_projections import _ProgressPrinter
    from cqrs_core.projections import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    out = OutputWrapper(screen)
    printer = _ProgressPrinter(out, out.isatty())
    printer(Progress(LEDGER, 50, 200, 40, 0.5))
    printer(Progress(LEDGER, 200, 200, 160, 2.0))
    printer.finish()
    text = screen.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n") and text.startswith("\r")
    assert "25.0%" in text and "100.0%" in text and "100 events/s" in text and "ETA 0:00:01" in text
