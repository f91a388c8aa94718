"""The command bus against the real database: results, atomicity, metadata, retries, snapshots, idempotency."""
from __future__ import annotations

import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import connection

import cqrs_core.bus as bus
from cqrs_core.bus import CommandResult, command_bus, load
from cqrs_core.commands import Actor, Command, CommandContext, ResourceRequirements, handler_for, handles
from cqrs_core.errors import ConcurrencyConflict, Forbidden, IdempotencyKeyReused, WrongExpectedVersion
from cqrs_core.models import CommandRecord, Snapshot, StoredEvent
from cqrs_core.store import read_stream
from tests.bus_app.commands import AccountNotFound, Deposit, InsufficientFunds, OpenAccount
from tests.bus_app.events import FundsDeposited
from tests.bus_app.state import ACCOUNT
from tests.factories import AccountOpenedFactory, DepositFactory, OpenAccountFactory, WithdrawFactory

pytestmark = pytest.mark.django_db


def _stream(account_id: uuid.UUID) -> str:
    return f"bus_app.account-{account_id}"


def _open(actor: Actor, deposits: int = 0, amount: Decimal = Decimal("100.00")) -> uuid.UUID:
    account_id = OpenAccountFactory().account_id
    command_bus.dispatch(OpenAccount(account_id=account_id), actor=actor)
    for _ in range(deposits):
        command_bus.dispatch(Deposit(account_id=account_id, amount=amount), actor=actor)
    return account_id


def test_a_successful_command_reports_its_position_version_data_and_events(actor: Actor) -> None:
    cmd = OpenAccountFactory()
    result = command_bus.dispatch(cmd, actor=actor)
    stored = StoredEvent.objects.get()
    assert (result.position, result.stream_version, result.stream_id) == (stored.position, 1, _stream(cmd.account_id))
    assert result.data == {"account_id": str(cmd.account_id)}
    assert [e.position for e in result.events] == [stored.position]
    assert result.elapsed_ms > 0 and not result.replayed
    assert CommandRecord.objects.filter(pk=result.command_id).exists()


def test_a_refused_command_writes_nothing(actor: Actor) -> None:
    account_id = _open(actor, deposits=1)
    before = (StoredEvent.objects.count(), CommandRecord.objects.count())
    with pytest.raises(InsufficientFunds):
        command_bus.dispatch(WithdrawFactory(account_id=account_id, amount=Decimal("100.01")), actor=actor)
    with pytest.raises(AccountNotFound):
        command_bus.dispatch(DepositFactory(), actor=actor)
    assert (StoredEvent.objects.count(), CommandRecord.objects.count()) == before


def test_ids_and_actor_are_stored_with_each_event(actor: Actor) -> None:
    command_id, correlation_id, causation_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    command_bus.dispatch(OpenAccountFactory(), actor=actor, command_id=command_id, correlation_id=correlation_id,
                         causation_id=causation_id)
    row = StoredEvent.objects.get()
    assert (row.command_id, row.correlation_id, row.causation_id, row.actor_id) == (
        command_id, correlation_id, causation_id, actor.user_id)


def test_a_command_without_a_cause_is_its_own_cause(actor: Actor) -> None:
    result = command_bus.dispatch(OpenAccountFactory(), actor=actor)
    assert StoredEvent.objects.get().causation_id == result.command_id


def test_a_wrong_expected_version_is_a_failed_precondition_and_writes_nothing(actor: Actor) -> None:
    account_id = _open(actor)
    with pytest.raises(WrongExpectedVersion):
        command_bus.dispatch(DepositFactory(account_id=account_id), actor=actor, expected_version=0)
    assert len(read_stream(_stream(account_id))) == 1
    assert command_bus.dispatch(DepositFactory(account_id=account_id), actor=actor, expected_version=1).stream_version == 2


def test_a_version_conflict_is_retried_with_fresh_state(actor: Actor, monkeypatch: pytest.MonkeyPatch) -> None:
    account_id = _open(actor)
    calls = []

    def conflict_once(real):
        def append(*args, **kwargs):
            calls.append(args)
            if len(calls) == 1:
                raise ConcurrencyConflict("simulated", stream_id=args[0])
            return real(*args, **kwargs)
        return append

    # The ORM append (SQLite) and the one-statement append of the PostgreSQL path.
    monkeypatch.setattr(bus, "append", conflict_once(bus.append))
    monkeypatch.setattr(bus.command_sql, "append_and_record", conflict_once(bus.command_sql.append_and_record))
    result = command_bus.dispatch(DepositFactory(account_id=account_id), actor=actor)
    assert (len(calls), result.stream_version) == (2, 2)
    assert len(read_stream(_stream(account_id))) == 2


def _in_threads(count: int, target, timeout: float = 60) -> list:
    """Run ``target(barrier)`` in ``count`` threads started together; returns results or exceptions."""
    barrier = threading.Barrier(count, timeout=30)
    outcomes: list = []

    def run() -> None:
        try:
            outcomes.append(target(barrier))
        except Exception as exc:  # noqa: BLE001 - returned to the test
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a command thread hung"
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_commands_on_one_stream_both_succeed(actor: Actor) -> None:
    account_id = _open(actor)

    def deposit(barrier: threading.Barrier) -> CommandResult:
        barrier.wait()
        return command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("1.50")), actor=actor)

    outcomes = _in_threads(2, deposit)
    assert all(isinstance(o, CommandResult) for o in outcomes), outcomes
    assert sorted(o.stream_version for o in outcomes) == [2, 3]
    state, version = load(handler_for(Deposit), _stream(account_id))
    assert (state.balance, version) == (Decimal("3.00"), 3)


# --- snapshots ---------------------------------------------------------------------------------
def test_a_snapshot_is_taken_every_five_events(actor: Actor) -> None:
    account_id = _open(actor, deposits=11)
    snapshot = Snapshot.objects.get(stream_id=_stream(account_id))
    assert (snapshot.stream_version, snapshot.state_type) == (10, ACCOUNT.name)


def test_loading_from_a_snapshot_equals_a_full_fold(actor: Actor) -> None:
    account_id = _open(actor, deposits=11, amount=Decimal("0.10"))
    full = ACCOUNT.fold(read_stream(_stream(account_id)))
    assert load(handler_for(Deposit), _stream(account_id)) == (full, 12)
    assert full.balance == Decimal("1.10")


def test_loading_starts_from_the_snapshot(actor: Actor) -> None:
    """A doctored snapshot shows through: the events it covers are not read again."""
    account_id = _open(actor, deposits=11)
    Snapshot.objects.filter(stream_id=_stream(account_id)).update(
        state={**Snapshot.objects.get(stream_id=_stream(account_id)).state, "balance": "1000000"})
    state, version = load(handler_for(Deposit), _stream(account_id))
    assert (state.balance, state.transactions, version) == (Decimal("1000200.00"), 11, 12)


def test_a_snapshot_of_another_schema_version_is_ignored(actor: Actor) -> None:
    account_id = _open(actor, deposits=11)
    Snapshot.objects.filter(stream_id=_stream(account_id)).update(
        schema_version=ACCOUNT.snapshot_version + 1, state={"not": "an account"})
    state, version = load(handler_for(Deposit), _stream(account_id))
    assert (state.balance, version) == (Decimal("1100.00"), 12)


# --- idempotency -------------------------------------------------------------------------------
def test_replay_of_same_command_id_writes_no_new_events(actor: Actor) -> None:
    account_id, command_id = _open(actor), uuid.uuid4()
    cmd = Deposit(account_id=account_id, amount=Decimal("2.50"))
    first = command_bus.dispatch(cmd, actor=actor, command_id=command_id)
    second = command_bus.dispatch(cmd, actor=actor, command_id=command_id)
    assert (second.replayed, second.position, second.data, second.stream_version) == (
        True, first.position, first.data, first.stream_version)
    assert [e.position for e in second.events] == [first.position]
    assert StoredEvent.objects.filter(command_id=command_id).count() == 1


def test_a_command_id_reused_for_another_command_is_refused(actor: Actor) -> None:
    account_id, command_id = _open(actor), uuid.uuid4()
    command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("1")), actor=actor, command_id=command_id)
    with pytest.raises(IdempotencyKeyReused):
        command_bus.dispatch(Deposit(account_id=account_id, amount=Decimal("2")), actor=actor, command_id=command_id)
    assert len(read_stream(_stream(account_id))) == 2


def test_another_actor_reusing_a_command_id_gets_no_replay_of_the_first_result(actor: Actor) -> None:
    account_id, command_id = _open(actor), uuid.uuid4()
    cmd = Deposit(account_id=account_id, amount=Decimal("1"))
    command_bus.dispatch(cmd, actor=actor, command_id=command_id)
    with pytest.raises(IdempotencyKeyReused):
        command_bus.dispatch(cmd, actor=Actor(user_id=(actor.user_id or 0) + 1000), command_id=command_id)
    assert StoredEvent.objects.filter(command_id=command_id).count() == 1


def test_two_command_classes_cannot_share_a_stored_name() -> None:
    @dataclass(frozen=True, kw_only=True)
    class NameClashForBusTest(Command, name="tests.Deposit"):
        account_id: uuid.UUID

    with pytest.raises(ValueError, match="already used"):
        handles(NameClashForBusTest, stream=lambda c: "x")(lambda s, c, ctx: [])


def test_folding_large_sums_is_exact_beyond_28_digits() -> None:
    account_id = uuid.uuid4()
    events = [AccountOpenedFactory(account_id=account_id)] + [
        FundsDeposited(account_id=account_id, amount=Decimal("9000000000.000000000000000001")) for _ in range(2)]
    assert ACCOUNT.fold(events).balance == Decimal("18000000000.000000000000000002")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("make_command", [OpenAccountFactory, DepositFactory], ids=["open", "deposit"])
def test_concurrent_duplicates_of_one_command_id_write_one_set_of_events(actor: Actor, make_command) -> None:
    account_id = _open(actor) if make_command is DepositFactory else uuid.uuid4()
    cmd, command_id = make_command(account_id=account_id), uuid.uuid4()

    def send(barrier: threading.Barrier) -> CommandResult:
        barrier.wait()
        return command_bus.dispatch(cmd, actor=actor, command_id=command_id)

    outcomes = _in_threads(10, send)
    assert all(isinstance(o, CommandResult) for o in outcomes), Counter(type(o).__name__ for o in outcomes)
    assert StoredEvent.objects.filter(command_id=command_id).count() == 1
    assert len({o.position for o in outcomes}) == 1
    assert Counter(o.replayed for o in outcomes) == {False: 1, True: 9}


# --- authorisation and async -------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class StaffOnlyCreditForBusTest(Command):
    account_id: uuid.UUID


def _staff_only(cmd: StaffOnlyCreditForBusTest, actor: Actor) -> None:
    if not actor.is_staff:
        raise Forbidden(command="StaffOnlyCreditForBusTest")


@handles(StaffOnlyCreditForBusTest, stream=lambda c: f"bus-test-credit-{c.account_id}", authorize=_staff_only)
def _credit(state: None, cmd: StaffOnlyCreditForBusTest, ctx: CommandContext) -> list[FundsDeposited]:
    return [FundsDeposited(account_id=cmd.account_id, amount=Decimal("1"))]


def test_an_authoriser_that_refuses_stops_the_command_before_anything_is_written(actor: Actor) -> None:
    with pytest.raises(Forbidden):
        command_bus.dispatch(StaffOnlyCreditForBusTest(account_id=uuid.uuid4()), actor=actor)
    assert (StoredEvent.objects.count(), CommandRecord.objects.count()) == (0, 0)
    command_bus.dispatch(StaffOnlyCreditForBusTest(account_id=uuid.uuid4()), actor=Actor(user_id=2, is_staff=True))
    assert StoredEvent.objects.count() == 1


def test_dispatch_async_runs_the_command_with_its_id_after_commit(actor: Actor, django_capture_on_commit_callbacks) -> None:
    cmd, command_id = OpenAccountFactory(), uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        assert command_bus.dispatch_async(cmd, actor=actor, command_id=command_id) == command_id
        assert StoredEvent.objects.count() == 0, "nothing runs before the transaction commits"
    row = StoredEvent.objects.get(stream_id=_stream(cmd.account_id))
    assert (row.command_id, row.actor_id) == (command_id, actor.user_id)
    assert CommandRecord.objects.get(pk=command_id).command_type == OpenAccount.command_type


@dataclass(frozen=True, kw_only=True)
class HeavyReportForBusTest(Command):
    account_id: uuid.UUID


@handles(HeavyReportForBusTest, stream=lambda c: f"bus-test.heavy-{c.account_id}",
         resources=ResourceRequirements(queue="heavy", priority=9, time_limit=5, soft_time_limit=4))
def _heavy_report(state: None, cmd: HeavyReportForBusTest, ctx: CommandContext) -> list:
    return []


def test_resource_requirements_choose_the_celery_queue_priority_and_time_limits(
        actor: Actor, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks) -> None:
    from cqrs_core.tasks import execute_command

    sent: list[dict] = []
    monkeypatch.setattr(execute_command, "apply_async", lambda **options: sent.append(options))
    with django_capture_on_commit_callbacks(execute=True):
        command_bus.dispatch_async(HeavyReportForBusTest(account_id=uuid.uuid4()), actor=actor)
    assert len(sent) == 1
    options = {k: v for k, v in sent[0].items() if k != "kwargs"}
    assert options == {"queue": "heavy", "priority": 9, "time_limit": 5, "soft_time_limit": 4}
    assert sent[0]["kwargs"]["command_type"] == HeavyReportForBusTest.command_type


def test_a_failing_after_commit_hook_neither_stops_the_next_nor_fails_the_command(
        actor: Actor, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks) -> None:
    seen: list[int] = []

    def broken(recorded) -> None:
        raise RuntimeError("hook down")

    monkeypatch.setattr(command_bus, "after_commit_hooks", [broken, lambda recorded: seen.append(recorded[-1].position)])
    with django_capture_on_commit_callbacks(execute=True):
        result = command_bus.dispatch(OpenAccountFactory(), actor=actor)
    assert seen == [result.position]
    assert StoredEvent.objects.filter(position=result.position).exists()
