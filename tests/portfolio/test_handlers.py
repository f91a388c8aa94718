"""Portfolio handlers, given events -> when a command -> then events or an error; no database."""
from __future__ import annotations

from decimal import Decimal

import pytest

from cqrs_core.commands import Actor
from portfolio.commands import (
    DepositFunds, OpenPortfolio, SetRiskLimits, WithdrawFunds, deposit_funds, open_portfolio, operators_only,
    owner_only, set_risk_limits, withdraw_funds,
)
from portfolio.errors import (
    AmountNotPositive, InsufficientFunds, OperatorsOnly, PortfolioAlreadyOpen, PortfolioNotFound,
)
from portfolio.events import FundsDeposited, FundsWithdrawn, PortfolioOpened, RiskLimitsSet
from tests.conftest import context

from .support import USER, DepositFundsFactory, decide, fold, funded

STAFF = Actor(user_id=9, is_staff=True)


def test_first_deposit_opens_the_portfolio() -> None:
    events = decide(deposit_funds, [], DepositFundsFactory(amount=Decimal("250.50")), context(actor=USER))
    assert events == [PortfolioOpened(user_id=1), FundsDeposited(user_id=1, amount=Decimal("250.50"))]


def test_later_deposits_only_add_cash() -> None:
    events = decide(deposit_funds, funded("5"), DepositFundsFactory(amount=Decimal("1")), context(actor=USER))
    assert events == [FundsDeposited(user_id=1, amount=Decimal("1"))]
    assert fold([*funded("5"), *events]).cash == Decimal("6")


@pytest.mark.parametrize("amount", ["0", "-1", "-0.000000000000000001"])
def test_deposits_and_withdrawals_must_be_positive(amount: str) -> None:
    for handler, cmd in ((deposit_funds, DepositFunds), (withdraw_funds, WithdrawFunds)):
        with pytest.raises(AmountNotPositive):
            decide(handler, funded(), cmd(user_id=1, amount=Decimal(amount)), context(actor=USER))


def test_withdraw_down_to_exactly_zero() -> None:
    events = decide(withdraw_funds, funded("100.01"), WithdrawFunds(user_id=1, amount=Decimal("100.01")))
    assert events == [FundsWithdrawn(user_id=1, amount=Decimal("100.01"))]
    assert fold([*funded("100.01"), *events]).cash == 0


def test_withdraw_never_below_zero() -> None:
    with pytest.raises(InsufficientFunds):
        decide(withdraw_funds, funded("100"), WithdrawFunds(user_id=1, amount=Decimal("100.000000000000000001")))


def test_withdraw_from_no_portfolio_is_insufficient_funds() -> None:
    with pytest.raises(InsufficientFunds):
        decide(withdraw_funds, [], WithdrawFunds(user_id=1, amount=Decimal("1")))


def test_open_twice_is_a_conflict() -> None:
    assert decide(open_portfolio, [], OpenPortfolio(user_id=1)) == [PortfolioOpened(user_id=1)]
    with pytest.raises(PortfolioAlreadyOpen):
        decide(open_portfolio, funded(), OpenPortfolio(user_id=1))


def test_only_the_owner_or_the_system_commands_a_portfolio() -> None:
    owner_only(DepositFunds(user_id=1, amount=Decimal(1)), USER)
    owner_only(DepositFunds(user_id=1, amount=Decimal(1)), Actor())
    for other in (Actor(user_id=2), STAFF):
        with pytest.raises(PortfolioNotFound):
            owner_only(DepositFunds(user_id=1, amount=Decimal(1)), other)


def test_risk_limits_are_for_operators_only() -> None:
    operators_only(SetRiskLimits(user_id=1, max_position_usd=Decimal(5)), STAFF)
    with pytest.raises(OperatorsOnly):
        operators_only(SetRiskLimits(user_id=1, max_position_usd=Decimal(5)), USER)


def test_setting_risk_limits_opens_an_unused_portfolio_and_records_who() -> None:
    events = decide(set_risk_limits, [], SetRiskLimits(user_id=1, max_position_usd=Decimal("2500")),
                    context(actor=STAFF, lookups={"user_exists": True}))
    assert events == [PortfolioOpened(user_id=1),
                      RiskLimitsSet(user_id=1, max_position_usd=Decimal("2500"), set_by=9)]
    assert fold(events).max_position_usd == Decimal("2500")


def test_risk_limits_of_an_unknown_user_are_not_found() -> None:
    with pytest.raises(PortfolioNotFound):
        decide(set_risk_limits, [], SetRiskLimits(user_id=77, max_position_usd=Decimal("1")),
               context(actor=STAFF, lookups={"user_exists": False}))


def test_risk_limits_must_be_positive() -> None:
    with pytest.raises(AmountNotPositive):
        decide(set_risk_limits, funded(), SetRiskLimits(user_id=1, max_position_usd=Decimal("0")),
               context(actor=STAFF, lookups={"user_exists": True}))
