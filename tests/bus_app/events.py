from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from cqrs_core.events import Event, upcaster


@dataclass(frozen=True, kw_only=True)
class AccountOpened(Event, name="bus_app.AccountOpened", version=2):
    account_id: UUID
    owner_id: int
    currency: str  # added in v2; v1 accounts were all USD


@upcaster("bus_app.AccountOpened", from_version=1)
def _account_opened_v1_to_v2(data: dict) -> dict:
    return {**data, "currency": "USD"}


@dataclass(frozen=True, kw_only=True)
class FundsDeposited(Event, name="bus_app.FundsDeposited"):
    account_id: UUID
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class FundsWithdrawn(Event, name="bus_app.FundsWithdrawn"):
    account_id: UUID
    amount: Decimal
