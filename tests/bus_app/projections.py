"""Projections of the test-only context: strict balances, a lenient ledger, immediate owners."""
from __future__ import annotations

from decimal import Decimal

from cqrs_core.events import Event, RecordedEvent
from cqrs_core.projections import IMMEDIATE, projection

from .events import AccountOpened, FundsDeposited, FundsWithdrawn
from .models import AccountBalance, AccountOwner, LedgerEntry

#: Deposits of these amounts make the projections raise: tests use it as a poison event.
POISON_AMOUNTS: set[Decimal] = set()


class PoisonEvent(RuntimeError):
    pass


def _check_poison(amount: Decimal) -> None:
    if amount in POISON_AMOUNTS:
        raise PoisonEvent(f"poison amount {amount}")


@projection("bus_app.balances", events=[AccountOpened, FundsDeposited, FundsWithdrawn], read_models=[AccountBalance])
def project_balances(event: Event, recorded: RecordedEvent) -> None:
    match event:
        case AccountOpened():
            AccountBalance.objects.create(account_id=event.account_id, owner_id=event.owner_id,
                                          currency=event.currency, balance=Decimal(0), position=recorded.position)
        case FundsDeposited() | FundsWithdrawn():
            _check_poison(event.amount)
            row = AccountBalance.objects.get(account_id=event.account_id)
            sign = 1 if isinstance(event, FundsDeposited) else -1
            row.balance += sign * event.amount
            row.transactions += 1
            row.position = recorded.position
            row.save()


@projection("bus_app.ledger", events=[FundsDeposited, FundsWithdrawn], read_models=[LedgerEntry], strict=False,
            batch_size=50)
def project_ledger(event: Event, recorded: RecordedEvent) -> None:
    match event:
        case FundsDeposited() | FundsWithdrawn():
            _check_poison(event.amount)
            sign = 1 if isinstance(event, FundsDeposited) else -1
            LedgerEntry.objects.create(position=recorded.position, account_id=event.account_id,
                                       amount=sign * event.amount)


@projection("bus_app.owners", events=[AccountOpened], read_models=[AccountOwner], mode=IMMEDIATE)
def project_owners(event: Event, recorded: RecordedEvent) -> None:
    match event:
        case AccountOpened():
            AccountOwner.objects.create(account_id=event.account_id, owner_id=event.owner_id)
