"""The saga engine in one process (Celery eager): steps, early ends, retries, compensations, crashes."""
from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter

import pytest
from django.utils import timezone

from cqrs_core.sagas import StepTimedOut, TransientError, advance, compensate_saga, retry_saga, start_saga, sweep_sagas
from cqrs_core.sagas.models import SagaInstance
from cqrs_core.tasks import saga_step
from tests.bus_app import sagas as test_sagas
from tests.bus_app.sagas import FAULTS, FragileTransferSaga, TransferSaga, WorkerKilled

from .conftest import balance, funded_account, money_events, saga, saga_events, transfer_data

pytestmark = pytest.mark.django_db
Status = SagaInstance.Status


def test_a_transfer_runs_every_step_once_and_records_its_history() -> None:
    a, b = funded_account(), funded_account()
    saga_id = start_saga(TransferSaga, transfer_data(a, b))

    row = saga(saga_id)
    assert row.status == Status.COMPLETED and row.ended_at is not None and row.reason == ""
    assert set(row.results) == {"withdraw", "deposit", "confirm"}
    assert (balance(a), balance(b)) == (70, 130)
    assert test_sagas.CALLS == ["withdraw", "deposit", "confirm"]
    assert saga_events(saga_id) == [
        ("saga.SagaStarted", ""), ("saga.StepCompleted", "withdraw"), ("saga.StepCompleted", "deposit"),
        ("saga.StepCompleted", "confirm"), ("saga.SagaCompleted", ""),
    ]
    assert row.version == len(saga_events(saga_id))


def test_continue_flow_false_ends_the_saga_early_as_completed_with_the_reason() -> None:
    a, b = funded_account(), funded_account()
    saga_id = start_saga(TransferSaga, transfer_data(a, b, stop_after="withdraw"))

    row = saga(saga_id)
    assert (row.status, row.reason) == (Status.COMPLETED, "stopped after withdraw")
    assert test_sagas.CALLS == ["withdraw"]
    assert (balance(a), balance(b)) == (70, 100)
    assert saga_events(saga_id)[-1] == ("saga.SagaCompleted", "")


def test_a_transient_failure_is_retried_until_the_step_succeeds() -> None:
    a, b = funded_account(), funded_account()
    FAULTS[("deposit", "before")] = [TransientError("flaky"), TransientError("flaky")]
    saga_id = start_saga(TransferSaga, transfer_data(a, b))

    row = saga(saga_id)
    assert row.status == Status.COMPLETED
    assert row.attempts["deposit"] == 3 and [e["step"] for e in row.errors] == ["deposit", "deposit"]
    assert Counter(saga_events(saga_id))[("saga.StepFailed", "deposit")] == 2
    assert (balance(a), balance(b)) == (70, 130)


def test_a_failure_beyond_retries_compensates_completed_steps_in_reverse_each_once() -> None:
    a, b = funded_account(), funded_account()
    FAULTS[("confirm", "before")] = [TransientError("down")] * 4  # 1 try + 3 retries
    saga_id = start_saga(TransferSaga, transfer_data(a, b))

    row = saga(saga_id)
    assert row.status == Status.COMPENSATED and "step confirm failed" in row.reason
    assert test_sagas.CALLS[-2:] == ["compensate:deposit", "compensate:withdraw"]
    assert row.compensated == ["deposit", "withdraw"]
    assert (balance(a), balance(b)) == (100, 100)
    assert set(money_events(a, b).values()) == {1} and len(money_events(a, b)) == 4
    kinds = [kind for kind, _ in saga_events(saga_id)]
    assert kinds.count("saga.CompensationCompleted") == 2 and kinds[-1] == "saga.SagaCompensated"


def test_a_non_retryable_domain_error_compensates_at_once() -> None:
    a, b = funded_account("10"), funded_account()
    saga_id = start_saga(TransferSaga, transfer_data(a, b, amount="30"))  # insufficient funds

    row = saga(saga_id)
    assert row.status == Status.COMPENSATED and "InsufficientFunds" in row.reason
    assert row.attempts == {"withdraw": 1} and row.compensated == []
    assert test_sagas.CALLS == ["withdraw"]


def test_a_compensation_that_keeps_failing_ends_failed_and_an_operator_can_retry_it() -> None:
    a, b = funded_account(), funded_account()
    FAULTS[("confirm", "before")] = [ValueError("bug")]  # not retryable: compensate now
    FAULTS[("compensate:withdraw", "before")] = [TransientError("ledger down")] * 3  # 1 try + 2 retries
    saga_id = start_saga(TransferSaga, transfer_data(a, b))

    row = saga(saga_id)
    assert row.status == Status.FAILED and row.ended_at is not None
    assert "compensation of withdraw failed" in row.reason and "ledger down" in row.reason
    assert saga_events(saga_id)[-1] == ("saga.SagaFailed", "compensate:withdraw")
    assert (balance(a), balance(b)) == (70, 100)  # the deposit was undone, the withdrawal not yet

    retry_saga(saga_id, by="ops@example.com")
    row = saga(saga_id)
    assert row.status == Status.COMPENSATED and row.compensated == ["deposit", "withdraw"]
    assert (balance(a), balance(b)) == (100, 100)
    assert ("saga.SagaOperatorAction", "") in saga_events(saga_id)
    assert StoredEventData.by(saga_id) == ["ops@example.com"]


class StoredEventData:
    """Who the operator actions of a saga were by."""

    @staticmethod
    def by(saga_id: uuid.UUID) -> list[str]:
        from cqrs_core.models import StoredEvent

        rows = StoredEvent.objects.filter(stream_id=f"saga-{saga_id}", event_type="saga.SagaOperatorAction")
        return [r.data["by"] for r in rows]


def _overdue(saga_id: uuid.UUID) -> None:
    past = timezone.now() - dt.timedelta(seconds=1)
    SagaInstance.objects.filter(pk=saga_id).update(deadline_at=past, lease_expires_at=past)


def test_an_overdue_step_found_by_the_sweep_fails_and_without_retries_compensates() -> None:
    a, b = funded_account(), funded_account()
    FAULTS[("deposit", "before")] = [WorkerKilled()]  # the step hangs: its driver never reports
    with pytest.raises(WorkerKilled):
        start_saga(FragileTransferSaga, transfer_data(a, b))
    saga_id = SagaInstance.objects.get().pk
    assert sweep_sagas() == []  # the lease is still good: nobody else may run the step

    _overdue(saga_id)
    assert sweep_sagas() == [saga_id]

    row = saga(saga_id)
    assert row.status == Status.COMPENSATED and "StepTimedOut" in row.reason
    assert row.errors[0]["error"].startswith(StepTimedOut.__name__)
    assert (balance(a), balance(b)) == (100, 100) and test_sagas.CALLS.count("compensate:withdraw") == 1


def test_a_worker_killed_after_the_effect_but_before_recording_it_is_finished_by_the_sweep_once() -> None:
    a, b = funded_account(), funded_account()
    FAULTS[("deposit", "after")] = [WorkerKilled()]  # the deposit committed; its completion did not
    with pytest.raises(WorkerKilled):
        start_saga(TransferSaga, transfer_data(a, b))
    saga_id = SagaInstance.objects.get().pk
    assert saga(saga_id).lease_owner != "" and "deposit" not in saga(saga_id).results

    _overdue(saga_id)
    sweep_sagas()
    sweep_sagas()  # beat again: nothing left to do

    row = saga(saga_id)
    assert row.status == Status.COMPLETED and row.attempts["deposit"] == 2
    assert test_sagas.CALLS == ["withdraw", "deposit", "deposit", "confirm"]
    assert (balance(a), balance(b)) == (70, 130)
    assert set(money_events(a, b).values()) == {1} and len(money_events(a, b)) == 2
    assert Counter(saga_events(saga_id))[("saga.StepCompleted", "deposit")] == 1


def test_a_saga_whose_next_step_message_was_lost_is_re_driven_by_the_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    from cqrs_core.sagas import engine

    a, b = funded_account(), funded_account()
    monkeypatch.setattr(engine, "schedule", lambda *args, **kwargs: None)  # the message is lost
    saga_id = start_saga(TransferSaga, transfer_data(a, b))
    assert advance(saga_id).more  # the withdrawal; then its worker dies before queueing the next step
    monkeypatch.undo()
    assert sweep_sagas() == []  # not idle for long yet
    SagaInstance.objects.filter(pk=saga_id).update(updated_at=timezone.now() - dt.timedelta(minutes=5))

    assert sweep_sagas() == [saga_id]
    assert saga(saga_id).status == Status.COMPLETED and test_sagas.CALLS == ["withdraw", "deposit", "confirm"]


def test_a_duplicate_delivery_while_the_step_runs_changes_nothing() -> None:
    a, b = funded_account(), funded_account()
    seen = []

    def deliver_again(ctx: object) -> None:
        seen.append(advance(ctx.saga_id))  # type: ignore[attr-defined]
        saga_step.apply(args=[str(ctx.saga_id)])  # type: ignore[attr-defined]

    FAULTS[("deposit", "after")] = [deliver_again]
    saga_id = start_saga(TransferSaga, transfer_data(a, b))

    assert seen[0].more is False  # the lease: the duplicate did not run the step
    saga_step.apply(args=[str(saga_id)])  # and again after the end
    assert saga(saga_id).status == Status.COMPLETED
    assert test_sagas.CALLS == ["withdraw", "deposit", "confirm"]
    assert set(money_events(a, b).values()) == {1}


def test_a_step_re_run_replays_its_command_instead_of_acting_twice() -> None:
    a, b = funded_account(), funded_account()
    FAULTS[("withdraw", "after")] = [TransientError("lost the reply")]
    saga_id = start_saga(TransferSaga, transfer_data(a, b))

    assert saga(saga_id).status == Status.COMPLETED and saga(saga_id).attempts["withdraw"] == 2
    assert (balance(a), balance(b)) == (70, 130)


def test_an_operator_compensates_a_stuck_saga(monkeypatch: pytest.MonkeyPatch) -> None:
    from cqrs_core.sagas import engine

    a, b = funded_account(), funded_account()
    monkeypatch.setattr(engine, "schedule", lambda *args, **kwargs: None)
    saga_id = start_saga(TransferSaga, transfer_data(a, b))
    advance(saga_id)
    monkeypatch.undo()

    compensate_saga(saga_id, by="ops")
    row = saga(saga_id)
    assert row.status == Status.COMPENSATED and row.reason == "compensation requested by ops"
    assert (balance(a), balance(b)) == (100, 100)
    with pytest.raises(engine.SagaNotInState):
        compensate_saga(saga_id, by="ops")
