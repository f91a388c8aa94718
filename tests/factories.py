"""factory-boy factories for the test-only ``bus_app`` context: events and commands."""
from __future__ import annotations

import uuid
from decimal import Decimal

import factory

from tests.bus_app.commands import Deposit, OpenAccount, Withdraw
from tests.bus_app.events import AccountOpened, FundsDeposited, FundsWithdrawn


class AccountOpenedFactory(factory.Factory):
    class Meta:
        model = AccountOpened

    account_id = factory.LazyFunction(uuid.uuid4)
    owner_id = 1
    currency = "USD"


class FundsDepositedFactory(factory.Factory):
    class Meta:
        model = FundsDeposited

    account_id = factory.LazyFunction(uuid.uuid4)
    amount = Decimal("100.00")


class FundsWithdrawnFactory(factory.Factory):
    class Meta:
        model = FundsWithdrawn

    account_id = factory.LazyFunction(uuid.uuid4)
    amount = Decimal("10.00")


class OpenAccountFactory(factory.Factory):
    class Meta:
        model = OpenAccount

    account_id = factory.LazyFunction(uuid.uuid4)
    currency = "USD"


class DepositFactory(factory.Factory):
    class Meta:
        model = Deposit

    account_id = factory.LazyFunction(uuid.uuid4)
    amount = Decimal("100.00")


class WithdrawFactory(factory.Factory):
    class Meta:
        model = Withdraw

    account_id = factory.LazyFunction(uuid.uuid4)
    amount = Decimal("10.00")
