"""Wake-ups with a real queue: one queued run per projection is enough; a send that fails leaves no mark."""
from __future__ import annotations

import pytest
from django.core.cache import cache

from cqrs_core import projections as proj
from cqrs_core.projections import release_wakeup, wake_projections
from cqrs_core.store import append
from cqrs_core.tasks import run_projection_task
from tests.bus_app.events import AccountOpened

from .conftest import BALANCES, OWNERS

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Wake-ups as a broker would take them: recorded, not run (the tasks are not eager)."""
    sent: list[str] = []
    monkeypatch.setattr(proj, "_tasks_run_inline", lambda: False)
    monkeypatch.setattr(run_projection_task, "apply_async", lambda args, **kwargs: sent.append(args[0]))
    cache.clear()
    yield sent
    cache.clear()


def opened():
    import uuid

    return append(f"bus_app.account-{uuid.uuid4()}", [AccountOpened(account_id=uuid.uuid4(), owner_id=1,
                                                                    currency="USD")], 0)


def test_a_commit_while_a_run_is_queued_sends_no_second_wakeup(queued: list[str]) -> None:
    wake_projections(opened())
    wake_projections(opened())
    assert queued.count(BALANCES) == 1 and OWNERS not in queued, "immediate projections are never woken"

    release_wakeup(BALANCES)  # what the queued run does first, before it reads
    wake_projections(opened())
    assert queued.count(BALANCES) == 2


def test_a_wakeup_that_cannot_be_sent_does_not_hold_back_the_next(queued: list[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broker_down(args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(run_projection_task, "apply_async", broker_down)
    wake_projections(opened())
    monkeypatch.setattr(run_projection_task, "apply_async", lambda args, **kwargs: queued.append(args[0]))
    wake_projections(opened())
    assert queued.count(BALANCES) == 1


def test_eager_tasks_are_woken_by_every_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    monkeypatch.setattr(proj, "_tasks_run_inline", lambda: True)
    monkeypatch.setattr(run_projection_task, "apply_async", lambda args, **kwargs: sent.append(args[0]))
    wake_projections(opened())
    wake_projections(opened())
    assert sent.count(BALANCES) == 2
