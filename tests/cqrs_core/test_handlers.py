"""bus_app handlers, given events -> when command -> then events or error; no database."""
from __future__ import annotations

from decimal import Decimal

import pytest

from cqrs_core.commands import Actor
from tests.bus_app.commands import (
    AccountAlreadyOpen, AccountNotFound, AmountNotPositive, InsufficientFunds, deposit, open_account, withdraw,
)
from tests.bus_app.events import AccountOpened, FundsDeposited, FundsWithdrawn
from tests.bus_app.state import ACCOUNT
from tests.conftest import context
from tests.factories import (
    AccountOpenedFactory, DepositFactory, FundsDepositedFactory, OpenAccountFactory, WithdrawFactory,
)


def test_opening_a_new_account_records_the_owner_and_currency(actor: Actor) -> None:
    cmd = OpenAccountFactory(currency="EUR")
    decision = open_account(None, cmd, context(actor=actor))
    assert list(decision.events) == [AccountOpened(account_id=cmd.account_id, owner_id=1, currency="EUR")]
    assert decision.result == {"account_id": cmd.account_id}


def test_opening_an_open_account_is_refused(actor: Actor) -> None:
    opened = AccountOpenedFactory()
    with pytest.raises(AccountAlreadyOpen):
        open_account(ACCOUNT.fold([opened]), OpenAccountFactory(account_id=opened.account_id), context(actor=actor))


def test_deposit_adds_to_the_balance(actor: Actor) -> None:
    opened = AccountOpenedFactory()
    account = ACCOUNT.fold([opened, FundsDepositedFactory(account_id=opened.account_id, amount=Decimal("5"))])
    decision = deposit(account, DepositFactory(account_id=opened.account_id, amount=Decimal("0.10")), context(actor=actor))
    assert list(decision.events) == [FundsDeposited(account_id=opened.account_id, amount=Decimal("0.10"))]
    assert decision.result == {"balance": Decimal("5.10")}


def test_withdrawing_more_than_the_balance_is_refused(actor: Actor) -> None:
    opened = AccountOpenedFactory()
    account = ACCOUNT.fold([opened, FundsDepositedFactory(account_id=opened.account_id, amount=Decimal("10"))])
    with pytest.raises(InsufficientFunds):
        withdraw(account, WithdrawFactory(account_id=opened.account_id, amount=Decimal("10.01")), context(actor=actor))


def test_withdrawing_the_whole_balance_is_allowed(actor: Actor) -> None:
    opened = AccountOpenedFactory()
    account = ACCOUNT.fold([opened, FundsDepositedFactory(account_id=opened.account_id, amount=Decimal("10"))])
    decision = withdraw(account, WithdrawFactory(account_id=opened.account_id, amount=Decimal("10")), context(actor=actor))
    assert list(decision.events) == [FundsWithdrawn(account_id=opened.account_id, amount=Decimal("10"))]
    assert decision.result == {"balance": Decimal("0")}


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-0.01")])
@pytest.mark.parametrize("handler, factory", [(deposit, DepositFactory), (withdraw, WithdrawFactory)])
def test_non_positive_amounts_are_refused(handler, factory, amount: Decimal, actor: Actor) -> None:
    opened = AccountOpenedFactory()
    account = ACCOUNT.fold([opened, FundsDepositedFactory(account_id=opened.account_id)])
    with pytest.raises(AmountNotPositive):
        handler(account, factory(account_id=opened.account_id, amount=amount), context(actor=actor))


def test_another_owners_account_is_not_found(actor: Actor) -> None:
    opened = AccountOpenedFactory(owner_id=2)
    with pytest.raises(AccountNotFound):
        deposit(ACCOUNT.fold([opened]), DepositFactory(account_id=opened.account_id), context(actor=actor))


def test_staff_may_act_on_any_account() -> None:
    opened = AccountOpenedFactory(owner_id=2)
    decision = deposit(ACCOUNT.fold([opened]), DepositFactory(account_id=opened.account_id),
                       context(actor=Actor(user_id=9, is_staff=True)))
    assert len(decision.events) == 1


def test_depositing_into_a_missing_account_is_not_found(actor: Actor) -> None:
    with pytest.raises(AccountNotFound):
        deposit(None, DepositFactory(), context(actor=actor))


def test_the_context_is_deterministic() -> None:
    first, second = context(seed=3), context(seed=3)
    assert (first.now, first.command_id, first.new_id()) == (second.now, second.command_id, second.new_id())
