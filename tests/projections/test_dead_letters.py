"""Dead letters: a poison event stops a strict projection, a lenient one goes on; retry and skip."""
from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from cqrs_core.models import DeadLetter, ProjectionState
from cqrs_core.projections import Status, retry_dead_letter, skip_dead_letter
from tests.bus_app.models import AccountBalance, LedgerEntry

from .conftest import BALANCES, LEDGER, deposit, ledger_counts_per_position, open_account

pytestmark = pytest.mark.django_db(transaction=True)

POISON = Decimal("13.13")


def poisoned_history(poison: set[Decimal]):
    account = open_account()
    first = deposit(account, "10")
    poison.add(POISON)
    bad = deposit(account, POISON)
    after = deposit(account, "5")
    return account, first, bad, after


def test_poison_fails_the_strict_projection_and_the_lenient_one_goes_on(poison: set[Decimal]) -> None:
    account, first, bad, after = poisoned_history(poison)

    balances = ProjectionState.objects.get(name=BALANCES)
    assert balances.status == Status.FAILED and balances.position == bad - 1
    assert str(bad) in balances.last_error and "PoisonEvent" in balances.last_error
    assert AccountBalance.objects.get(account_id=account).balance == Decimal("10")
    letter = DeadLetter.objects.get(projection=BALANCES, position=bad)
    assert letter.status == DeadLetter.Status.PENDING and letter.attempts == 3
    assert "PoisonEvent" in letter.error and "Traceback" in letter.traceback and "_check_poison" in letter.traceback

    ledger = ProjectionState.objects.get(name=LEDGER)
    assert ledger.status == Status.RUNNING and ledger.position == after
    assert set(ledger_counts_per_position()) == {first, after}
    assert DeadLetter.objects.get(projection=LEDGER, position=bad).status == DeadLetter.Status.PENDING

    # Still poisoned: a retry fails, the letter stays pending with more attempts.
    assert retry_dead_letter(letter.pk, by="alice") is False
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.PENDING and letter.attempts == 6
    assert ProjectionState.objects.get(name=BALANCES).status == Status.FAILED


def test_retry_after_the_fix_applies_the_letter_and_records_who(poison: set[Decimal]) -> None:
    account, first, bad, after = poisoned_history(poison)
    poison.clear()

    strict = DeadLetter.objects.get(projection=BALANCES, position=bad)
    assert retry_dead_letter(strict.pk, by="alice") is True
    strict.refresh_from_db()
    assert strict.status == DeadLetter.Status.RESOLVED and strict.resolved_by == "alice" and strict.resolved_at
    balances = ProjectionState.objects.get(name=BALANCES)
    assert balances.status == Status.RUNNING and balances.position == after, "the strict projection runs on"
    row = AccountBalance.objects.get(account_id=account)
    assert row.balance == Decimal("10") + POISON + Decimal("5") and row.transactions == 3

    lenient = DeadLetter.objects.get(projection=LEDGER, position=bad)
    assert retry_dead_letter(lenient.pk, by="bob") is True
    lenient.refresh_from_db()
    assert lenient.status == DeadLetter.Status.RESOLVED and lenient.resolved_by == "bob"
    assert ledger_counts_per_position() == {first: 1, bad: 1, after: 1}, "applied once, out of order"
    assert LedgerEntry.objects.get(position=bad).amount == POISON
    assert ProjectionState.objects.get(name=LEDGER).position == after


def test_skip_moves_the_strict_projection_past_the_letter(poison: set[Decimal]) -> None:
    account, first, bad, after = poisoned_history(poison)
    letter = DeadLetter.objects.get(projection=BALANCES, position=bad)
    skip_dead_letter(letter.pk, by="carol")
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.SKIPPED and letter.resolved_by == "carol" and letter.resolved_at
    balances = ProjectionState.objects.get(name=BALANCES)
    assert balances.status == Status.RUNNING and balances.position == after
    row = AccountBalance.objects.get(account_id=account)
    assert row.balance == Decimal("15") and row.transactions == 2


def test_retrying_a_lenient_letter_twice_applies_its_event_once(poison: set[Decimal]) -> None:
    """A double click, or two operators at once: the second retry must not apply the event again."""
    account, first, bad, after = poisoned_history(poison)
    poison.clear()
    letter = DeadLetter.objects.get(projection=LEDGER, position=bad)
    go = threading.Barrier(2, timeout=30)
    outcomes: list[bool] = []
    errors: list[BaseException] = []

    def operator(name: str) -> None:
        try:
            go.wait()
            outcomes.append(retry_dead_letter(letter.pk, by=name))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=operator, args=(name,)) for name in ("dave", "erin")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert outcomes == [True, True]
    assert retry_dead_letter(letter.pk, by="frank") is True
    assert ledger_counts_per_position() == {first: 1, bad: 1, after: 1}
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.RESOLVED and letter.resolved_by in ("dave", "erin")
