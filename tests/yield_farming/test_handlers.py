"""Yield handlers on the portfolio stream, given events -> when a command -> then events or an error; no database."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from cqrs_core.commands import Actor
from cqrs_core.errors import ValidationFailed
from portfolio.commands import WithdrawFunds, withdraw_funds
from portfolio.errors import OperatorsOnly, PortfolioNotFound
from portfolio.events import FundsReserved, ReservationReleased
from tests.conftest import FIXED_NOW, context
from tests.portfolio.support import ExecuteTradeFactory, funded, trade_context
from trading.commands import execute_trade
from yield_farming.commands import (
    Allocation, CloseYieldPositions, ExecuteYieldStrategy, OpenYieldPositions, ReleaseReservation,
    close_yield_positions, execute_yield_strategy, open_yield_positions, position_id_for, release_reservation,
)
from yield_farming.errors import (
    AmountTooLow, InsufficientFunds, ReservationNotFound, StrategyAlreadyRequested, UnknownProtocol,
)
from yield_farming.events import YieldPositionClosed, YieldPositionOpened, YieldStrategyExecutionRequested
from yield_farming.rules import YieldRules

from .support import STRATEGY, decide, yield_context

SYSTEM_CTX = context(lookups={"catalogue": yield_context().lookups["catalogue"]})


def strategy(amount: str = "5000", protocols: tuple[str, ...] = ("any",), tolerance: str = "moderate",
             strategy_id: uuid.UUID = STRATEGY) -> ExecuteYieldStrategy:
    return ExecuteYieldStrategy(user_id=1, strategy_id=strategy_id, protocols=protocols, amount=Decimal(amount),
                                risk_tolerance=tolerance)


def requested(cash: str = "10000", amount: str = "5000") -> list:
    return [*funded(cash), *decide(execute_yield_strategy, funded(cash), strategy(amount))]


def fold_state(events: list):
    from portfolio.state import PORTFOLIO

    return PORTFOLIO.fold(events)


def test_a_strategy_reserves_its_amount_and_is_requested() -> None:
    events = decide(execute_yield_strategy, funded("10000"), strategy("5000", ("safe-a", "mid-c")))
    assert events == [
        FundsReserved(user_id=1, reservation_id=STRATEGY, amount=Decimal("5000"), purpose="yield_strategy"),
        YieldStrategyExecutionRequested(strategy_id=STRATEGY, user_id=1, protocols=("safe-a", "mid-c"),
                                        amount=Decimal("5000"), risk_tolerance="moderate", requested_at=FIXED_NOW),
    ]
    state = fold_state([*funded("10000"), *events])
    assert (state.cash, state.reserved, state.reservation(STRATEGY)) == (5000, 5000, 5000)


@pytest.mark.parametrize("amount", ["999.99", "0", "-5"])
def test_below_the_minimum_is_amount_too_low(amount: str) -> None:
    with pytest.raises(AmountTooLow) as caught:
        decide(execute_yield_strategy, funded("10000"), strategy(amount))
    assert caught.value.code == "amount_too_low"


def test_the_minimum_comes_from_the_rules() -> None:
    ctx = yield_context(rules=YieldRules(min_strategy_usd=Decimal("2500")))
    with pytest.raises(AmountTooLow):
        decide(execute_yield_strategy, funded("10000"), strategy("2000"), ctx)
    assert decide(execute_yield_strategy, funded("10000"), strategy("1000")) != []


def test_an_unknown_protocol_is_refused_naming_it() -> None:
    with pytest.raises(UnknownProtocol) as caught:
        decide(execute_yield_strategy, funded("10000"), strategy(protocols=("safe-a", "nope", "nada")))
    assert caught.value.code == "unknown_protocol" and caught.value.context["unknown"] == ["nada", "nope"]


def test_more_than_the_cash_is_insufficient_funds_and_exactly_the_cash_is_fine() -> None:
    with pytest.raises(InsufficientFunds) as caught:
        decide(execute_yield_strategy, funded("5000"), strategy("5000.000000000000000001"))
    assert caught.value.http_status == 409 and caught.value.code == "insufficient_funds"
    assert decide(execute_yield_strategy, funded("5000"), strategy("5000"))[0].amount == 5000
    with pytest.raises(InsufficientFunds):
        decide(execute_yield_strategy, [], strategy("1000"))


def test_reserved_cash_cannot_be_reserved_withdrawn_or_traded_again() -> None:
    given = requested("10000", "8000")
    with pytest.raises(InsufficientFunds):
        decide(execute_yield_strategy, given, strategy("3000", strategy_id=uuid.uuid4()))
    with pytest.raises(InsufficientFunds):
        decide(withdraw_funds, given, WithdrawFunds(user_id=1, amount=Decimal("2000.01")))
    with pytest.raises(InsufficientFunds):
        decide(execute_trade, given, ExecuteTradeFactory(amount=Decimal("0.05")), trade_context())  # 2,500 + fee


def test_a_strategy_id_is_used_once() -> None:
    given = requested("10000", "1000")
    with pytest.raises(StrategyAlreadyRequested):
        decide(execute_yield_strategy, given, strategy("1000"))


def test_an_unknown_tolerance_is_invalid() -> None:
    with pytest.raises(ValidationFailed):
        decide(execute_yield_strategy, funded("10000"), strategy(tolerance="yolo"))


def test_only_the_owner_executes_a_strategy() -> None:
    from portfolio.commands import owner_only

    with pytest.raises(PortfolioNotFound):
        owner_only(strategy(), Actor(user_id=2))
    owner_only(strategy(), Actor(user_id=1))


def test_saga_commands_are_for_the_system_and_operators_only() -> None:
    from portfolio.commands import operators_only

    with pytest.raises(OperatorsOnly):
        operators_only(OpenYieldPositions(user_id=1, strategy_id=STRATEGY, allocations=()), Actor(user_id=1))
    operators_only(ReleaseReservation(user_id=1, reservation_id=STRATEGY, reason="x"), Actor(user_id=9, is_staff=True))


def open_cmd(*allocations: tuple[str, str]) -> OpenYieldPositions:
    return OpenYieldPositions(user_id=1, strategy_id=STRATEGY, allocations=tuple(
        Allocation(protocol=p, amount=Decimal(a)) for p, a in allocations))


def test_positions_consume_the_reservation_at_the_apy_of_opening_and_the_rest_is_released() -> None:
    events = decide(open_yield_positions, requested("10000", "5000"), open_cmd(("safe-a", "2499.99"),
                                                                                 ("mid-c", "2499.99")), SYSTEM_CTX)
    first, second, rest = events
    assert first == YieldPositionOpened(user_id=1, position_id=position_id_for(STRATEGY, "safe-a"), strategy_id=STRATEGY,
                                        protocol="safe-a", principal=Decimal("2499.99"), apy=Decimal("4"),
                                        opened_at=FIXED_NOW)
    assert second.apy == Decimal("9") and second.principal == Decimal("2499.99")
    assert rest == ReservationReleased(user_id=1, reservation_id=STRATEGY, amount=Decimal("0.02"), reason="unallocated")
    state = fold_state([*requested("10000", "5000"), *events])
    assert (state.cash, state.reserved, state.yield_principal) == (Decimal("5000.02"), 0, Decimal("4999.98"))
    assert state.reservations == {}


def test_positions_cannot_take_more_than_is_reserved_or_a_released_reservation() -> None:
    with pytest.raises(ReservationNotFound):
        decide(open_yield_positions, requested("10000", "5000"), open_cmd(("safe-a", "5000.01")), SYSTEM_CTX)
    released = [*requested("10000", "5000"), *decide(release_reservation, requested("10000", "5000"),
                                                     ReleaseReservation(user_id=1, reservation_id=STRATEGY, reason="x"))]
    with pytest.raises(ReservationNotFound):
        decide(open_yield_positions, released, open_cmd(("safe-a", "1000")), SYSTEM_CTX)


def test_a_release_gives_back_what_is_left_once() -> None:
    given = requested("10000", "5000")
    release = ReleaseReservation(user_id=1, reservation_id=STRATEGY, reason="no_opportunities")
    events = decide(release_reservation, given, release)
    assert events == [ReservationReleased(user_id=1, reservation_id=STRATEGY, amount=Decimal("5000"),
                                          reason="no_opportunities")]
    assert decide(release_reservation, [*given, *events], release) == []
    assert fold_state([*given, *events]).cash == Decimal("10000")


def test_closing_puts_the_principal_back_to_cash_once() -> None:
    given = requested("10000", "5000")
    given += decide(open_yield_positions, given, open_cmd(("safe-a", "2500"), ("mid-c", "2500")), SYSTEM_CTX)
    close = CloseYieldPositions(user_id=1, strategy_id=STRATEGY, reason="compensation")
    events = decide(close_yield_positions, given, close)
    assert [type(e) for e in events] == [YieldPositionClosed, YieldPositionClosed]
    assert sum(e.principal for e in events) == Decimal("5000")
    state = fold_state([*given, *events])
    assert (state.cash, state.reserved, state.yield_principal, state.yield_positions) == (10000, 0, 0, {})
    assert decide(close_yield_positions, [*given, *events], close) == []
