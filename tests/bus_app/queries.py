"""Queries of the test-only context: an account's balance, owners only."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cqrs_core.queries import CachePolicy, Query, QueryContext, query_handler

from .commands import AccountNotFound
from .models import AccountBalance


@dataclass(frozen=True, kw_only=True)
class GetAccountBalance(Query):
    account_id: UUID


@query_handler(GetAccountBalance, projections=["bus_app.balances"], cache=CachePolicy(ttl=300))
def get_account_balance(query: GetAccountBalance, ctx: QueryContext) -> dict[str, Any]:
    """The balance of one account; someone else's account is not found (staff see all)."""
    row = AccountBalance.objects.filter(account_id=query.account_id).first()
    actor = ctx.actor
    if row is None or (not actor.is_system and not actor.is_staff and row.owner_id != actor.user_id):
        raise AccountNotFound(account_id=str(query.account_id))
    return {"account_id": row.account_id, "owner_id": row.owner_id, "currency": row.currency,
            "balance": row.balance, "transactions": row.transactions, "position": row.position}
