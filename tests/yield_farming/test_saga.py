"""YieldFarmingSaga end to end in one process (Celery eager): success, early ends, compensation, duplicates."""
from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from cqrs_core.sagas import start_sagas_for_events
from cqrs_core.sagas.models import SagaInstance
from cqrs_core.store import read_stream
from cqrs_core.tasks import saga_step
from cqrs_core.sagas import TransientError
from portfolio.models import Portfolio as PortfolioRow
from portfolio.state import portfolio_stream
from yield_farming.catalogue import UpdateProtocol
from yield_farming.models import YieldPosition, YieldStrategy
from yield_farming.sagas import YieldFarmingSaga

from .conftest import deposit, portfolio_events, portfolio_state, projected, request, saga_kinds, total_cash

pytestmark = [pytest.mark.django_db(transaction=True, reset_sequences=True), pytest.mark.usefixtures("catalogue")]
Status = SagaInstance.Status
USER = 7


def saga_of(strategy_id: object) -> SagaInstance:
    projected()
    return SagaInstance.objects.get(pk=YieldStrategy.objects.get(pk=strategy_id).saga_id)


def assert_all_back_in_cash(user_id: int = USER, cash: str = "10000") -> None:
    state = portfolio_state(user_id)
    assert (state.cash, state.reserved, state.yield_principal) == (Decimal(cash), 0, 0)
    projected()
    row = PortfolioRow.objects.get(pk=user_id)
    assert (row.cash, row.reserved, row.yield_principal) == (Decimal(cash), 0, 0)


def test_a_strategy_opens_positions_in_the_best_acceptable_protocols() -> None:
    deposit(USER)
    strategy_id = request(USER, "5000", tolerance="moderate")

    saga = saga_of(strategy_id)
    assert (saga.status, saga.reason) == (Status.COMPLETED, "")
    ranked = [r["slug"] for r in saga.results["analyse_opportunities"]["ranked"]]
    assert ranked == ["wild-d", "mid-c", "safe-a", "safe-b"]  # 40x0.2=8, 9x0.6=5.4, 4x0.9=3.6, 3.5x0.9=3.15
    assert saga.results["assess_risks"]["accepted"] == ["mid-c", "safe-a", "safe-b"]
    assert saga.results["assess_risks"]["rejected"] == [
        {"slug": "wild-d", "reasons": ["risk score 9 > 6", "TVL 2000000 < 50000000"]}]
    positions = {p.protocol: (p.principal, p.apy) for p in YieldPosition.objects.filter(strategy_id=strategy_id)}
    assert positions == {"mid-c": (Decimal("2500.00"), Decimal("9")), "safe-a": (Decimal("2500.00"), Decimal("4"))}
    state = portfolio_state(USER)
    assert (state.cash, state.reserved, state.yield_principal) == (Decimal("5000"), 0, Decimal("5000.00"))
    assert portfolio_events(USER)["ReservationReleased"] == 0
    assert [k for k, _ in saga_kinds(saga.pk)] == ["SagaStarted", *["StepCompleted"] * 4, "SagaCompleted"]


def test_a_remainder_the_share_cap_leaves_goes_back_to_cash(settings) -> None:  # type: ignore[no-untyped-def]
    settings.YIELD_MAX_SHARE_PER_PROTOCOL = "0.25"  # four protocols wanted, two acceptable: half placed
    deposit(USER)
    strategy_id = request(USER, "5000", protocols=("safe-a", "safe-b"), tolerance="conservative")
    assert saga_of(strategy_id).status == Status.COMPLETED
    state = portfolio_state(USER)
    assert (state.cash, state.reserved, state.yield_principal) == (Decimal("7500.00"), 0, Decimal("2500.00"))
    assert portfolio_events(USER)["ReservationReleased"] == 1
    assert YieldStrategy.objects.get(pk=strategy_id).released == Decimal("2500.00")


def test_no_opportunity_ends_early_and_releases_the_reservation() -> None:
    from cqrs_core.bus import command_bus

    command_bus.dispatch(UpdateProtocol(slug="safe-a", apy=Decimal("0")))
    deposit(USER)
    strategy_id = request(USER, "5000", protocols=("safe-a",))

    saga = saga_of(strategy_id)
    assert (saga.status, saga.reason) == (Status.COMPLETED, "no_opportunities")
    assert set(saga.results) == {"hold_funds", "analyse_opportunities"}
    assert portfolio_events(USER)["ReservationReleased"] == 1
    assert_all_back_in_cash()
    assert not YieldPosition.objects.exists()


def test_no_acceptable_risk_ends_early_and_releases_the_reservation() -> None:
    deposit(USER)
    strategy_id = request(USER, "5000", protocols=("mid-c", "wild-d"), tolerance="conservative")

    saga = saga_of(strategy_id)
    assert (saga.status, saga.reason) == (Status.COMPLETED, "no_acceptable_risk")
    rejected = {r["slug"]: r["reasons"] for r in saga.results["assess_risks"]["rejected"]}
    assert rejected["wild-d"] == ["risk score 9 > 3", "TVL 2000000 < 500000000", "not audited"]
    assert portfolio_events(USER)["ReservationReleased"] == 1
    assert_all_back_in_cash()


def test_too_few_acceptable_protocols_to_diversify_ends_early_and_releases(settings) -> None:  # type: ignore[no-untyped-def]
    settings.YIELD_MIN_PROTOCOLS = 3
    deposit(USER)
    strategy_id = request(USER, "5000", tolerance="conservative")  # only safe-a and safe-b qualify

    saga = saga_of(strategy_id)
    assert (saga.status, saga.reason) == (Status.COMPLETED, "cannot_diversify")
    assert portfolio_events(USER)["ReservationReleased"] == 1
    assert_all_back_in_cash()


def test_a_failure_before_opening_compensates_by_releasing_once(faults) -> None:  # type: ignore[no-untyped-def]
    faults[("OpenYieldPositions", "before")] = [ValueError("pool contract reverted")]
    deposit(USER)
    strategy_id = request(USER)

    saga = saga_of(strategy_id)
    assert saga.status == Status.COMPENSATED and "pool contract reverted" in saga.reason
    assert saga.compensated == ["hold_funds"]
    assert Counter(saga_kinds(saga.pk))[("CompensationCompleted", "hold_funds")] == 1
    assert portfolio_events(USER)["ReservationReleased"] == 1
    assert portfolio_events(USER)["YieldPositionOpened"] == 0
    assert_all_back_in_cash()


def test_a_failure_after_opening_closes_the_positions_once_and_releases_nothing_twice(faults) -> None:  # type: ignore[no-untyped-def]
    faults[("OpenYieldPositions", "after")] = [ValueError("lost the receipt")]
    deposit(USER)
    strategy_id = request(USER)

    saga = saga_of(strategy_id)
    assert saga.status == Status.COMPENSATED
    events = portfolio_events(USER)
    assert (events["YieldPositionOpened"], events["YieldPositionClosed"], events["ReservationReleased"]) == (2, 2, 0)
    assert_all_back_in_cash()
    assert YieldPosition.objects.filter(closed_at__isnull=False, close_reason="compensation").count() == 2


def test_a_compensation_that_fails_once_is_retried_and_still_acts_once(faults) -> None:  # type: ignore[no-untyped-def]
    faults[("OpenYieldPositions", "after")] = [ValueError("lost the receipt")]
    faults[("ReleaseReservation", "after")] = [TransientError("ledger slow")]
    faults[("CloseYieldPositions", "after")] = [TransientError("ledger slow")]
    deposit(USER)
    saga = saga_of(request(USER))
    assert saga.status == Status.COMPENSATED and saga.attempts["compensate:hold_funds"] == 3
    events = portfolio_events(USER)
    assert (events["YieldPositionClosed"], events["ReservationReleased"]) == (2, 0)
    assert_all_back_in_cash()


def test_a_transient_failure_is_retried_and_opens_the_positions_once(faults) -> None:  # type: ignore[no-untyped-def]
    faults[("OpenYieldPositions", "after")] = [TransientError("rpc timeout")]
    deposit(USER)
    saga = saga_of(request(USER))
    assert saga.status == Status.COMPLETED and saga.attempts["execute_positions"] == 2
    assert portfolio_events(USER)["YieldPositionOpened"] == 2
    assert total_cash(USER) == Decimal("10000")


def test_a_duplicate_delivery_of_the_request_starts_nothing_more() -> None:
    deposit(USER)
    strategy_id = request(USER)
    saga = saga_of(strategy_id)
    before = (saga_kinds(saga.pk), portfolio_events(USER))

    start_sagas_for_events(read_stream(portfolio_stream(USER)))  # the hook fires again for every event
    saga_step.apply(args=[str(saga.pk)])  # and a stray step message arrives after the end

    assert SagaInstance.objects.filter(saga_type=YieldFarmingSaga.saga_type).count() == 1
    assert (saga_kinds(saga.pk), portfolio_events(USER)) == before
