from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from uuid import UUID

from cqrs_core.commands import Aggregate
from cqrs_core.events import Event

from .events import AccountOpened, FundsDeposited, FundsWithdrawn


@dataclass(frozen=True)
class Account:
    account_id: UUID
    owner_id: int
    currency: str
    balance: Decimal = Decimal("0")
    transactions: int = 0


def evolve(state: Account | None, event: Event) -> Account | None:
    match event:
        case AccountOpened():
            return Account(account_id=event.account_id, owner_id=event.owner_id, currency=event.currency)
        case FundsDeposited() if state is not None:
            return replace(state, balance=state.balance + event.amount, transactions=state.transactions + 1)
        case FundsWithdrawn() if state is not None:
            return replace(state, balance=state.balance - event.amount, transactions=state.transactions + 1)
    return state


ACCOUNT = Aggregate("bus_app.account", evolve=evolve, state_type=Account)
