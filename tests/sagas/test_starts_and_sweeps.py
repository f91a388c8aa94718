"""Sagas started by events (once, never during a rebuild) and two beat sweeps racing each other."""
from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from cqrs_core.bus import command_bus
from cqrs_core.models import StoredEvent
from cqrs_core.projections import _replaying, rebuild
from cqrs_core.sagas import start_saga, start_sagas_for_events, sweep_sagas
from cqrs_core.sagas import engine
from cqrs_core.sagas.models import SagaInstance
from cqrs_core.store import read_stream
from tests.bus_app.commands import OpenAccount
from tests.bus_app.sagas import BONUS_CURRENCY, TransferSaga, WelcomeBonusSaga

from .conftest import balance, funded_account, money_events, saga_events, transfer_data

Status = SagaInstance.Status


@pytest.mark.django_db
def test_an_event_starts_its_saga_once_even_if_the_hook_fires_twice(django_capture_on_commit_callbacks) -> None:
    account = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        command_bus.dispatch(OpenAccount(account_id=account, currency=BONUS_CURRENCY))
    opened = read_stream(f"bus_app.account-{account}")

    start_sagas_for_events(opened)  # a second delivery of the same events
    row = SagaInstance.objects.get(saga_type=WelcomeBonusSaga.saga_type)
    assert row.status == Status.COMPLETED and row.id == engine.saga_id_for_event(WelcomeBonusSaga, opened[0])
    assert row.correlation_id == opened[0].metadata.correlation_id
    assert balance(account) == 5 and len(money_events(account)) == 0  # the bonus is the stream's version 2
    assert StoredEvent.objects.filter(stream_id=f"bus_app.account-{account}").count() == 2


@pytest.mark.django_db
def test_other_events_start_nothing(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        command_bus.dispatch(OpenAccount(account_id=uuid.uuid4()))
    assert not SagaInstance.objects.exists()


@pytest.mark.django_db
def test_no_saga_starts_or_runs_during_a_projection_rebuild() -> None:
    account = uuid.uuid4()
    command_bus.dispatch(OpenAccount(account_id=account, currency=BONUS_CURRENCY))  # hook not run: no commit
    opened = read_stream(f"bus_app.account-{account}")
    a, b = funded_account(), funded_account()

    token = _replaying.set(True)
    try:
        start_sagas_for_events(opened)
        assert start_saga(TransferSaga, transfer_data(a, b)) is None
        assert sweep_sagas() == []
    finally:
        _replaying.reset(token)
    rebuild("bus_app.balances")
    assert not SagaInstance.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_run_every_step_and_compensation_once(monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = [(funded_account(), funded_account()) for _ in range(6)]
    monkeypatch.setattr(engine, "schedule", lambda *args, **kwargs: None)  # every first message is lost
    # Half of them fail at their last step beyond retries and must compensate.
    ids = [start_saga(TransferSaga, transfer_data(a, b, **({"fail_confirm": "yes"} if n % 2 else {})))
           for n, (a, b) in enumerate(pairs)]
    monkeypatch.undo()
    SagaInstance.objects.update(updated_at=timezone.now() - dt.timedelta(minutes=5))

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def beat() -> None:
        try:
            barrier.wait()
            while sweep_sagas():  # beat ticks until nothing is left to re-drive
                pass
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors

    rows = SagaInstance.objects.filter(pk__in=ids)
    assert {r.status for r in rows} <= {Status.COMPLETED, Status.COMPENSATED}
    assert Counter(r.status for r in rows)[Status.COMPENSATED] == 3
    for saga_id in ids:
        counts = Counter(saga_events(saga_id))
        done = [key for key, n in counts.items() if key[0] in ("saga.StepCompleted", "saga.CompensationCompleted")]
        assert all(counts[key] == 1 for key in done), counts
    for a, b in pairs:
        assert set(money_events(a, b).values()) <= {1}
        assert balance(a) + balance(b) == 200
