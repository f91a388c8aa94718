"""The query cache: hits, what invalidates an entry, owners only, stale-while-revalidate, scopes."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cqrs_core.projections import rebuild, run_projection
from cqrs_core.queries import CachePolicy, Query, QueryContext, invalidate, query_bus, query_handler
from tests.bus_app.commands import AccountNotFound
from tests.bus_app.models import AccountBalance
from tests.bus_app.queries import GetAccountBalance

from .conftest import ALICE, BALANCES, BOB, STAFF, Clock, deposit, open_account

# Real commits: on PostgreSQL the gap-free reader cannot pass the holes that rolled-back tests
# leave in the positions while the test itself holds a transaction open.
pytestmark = pytest.mark.django_db(transaction=True)
READ_MODEL_TABLE = AccountBalance._meta.db_table


@dataclass(frozen=True, kw_only=True)
class GetBalanceAsOf(Query):
    """Test query whose answer carries the time it was computed, with a short TTL."""

    account_id: UUID


CALLS: list[UUID] = []


@query_handler(GetBalanceAsOf, projections=[BALANCES], cache=CachePolicy(ttl=10, stale_while_revalidate=5))
def get_balance_as_of(query: GetBalanceAsOf, ctx: QueryContext) -> dict[str, Any]:
    CALLS.append(query.account_id)
    row = AccountBalance.objects.get(account_id=query.account_id)
    return {"balance": row.balance, "as_of": ctx.now}


@dataclass(frozen=True, kw_only=True)
class GetScopedBalance(Query):
    """Test query cached per account scope instead of per checkpoint."""

    account_id: UUID


def _account_scope(query: GetScopedBalance, actor: object) -> str:
    return f"test-account:{query.account_id}"


@query_handler(GetScopedBalance, projections=[BALANCES], cache=CachePolicy(ttl=300), scope=_account_scope)
def get_scoped_balance(query: GetScopedBalance, ctx: QueryContext) -> Decimal:
    return AccountBalance.objects.get(account_id=query.account_id).balance


def _funded_account(amount: str = "10") -> UUID:
    account = open_account()
    deposit(account, amount)
    run_projection(BALANCES)
    return account


def _read_model_queries(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if READ_MODEL_TABLE in q["sql"]]


def test_a_second_ask_is_served_from_the_cache_without_reading_the_read_model() -> None:
    account = _funded_account("10")
    with CaptureQueriesContext(connection) as first:
        miss = query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE)
    with CaptureQueriesContext(connection) as second:
        hit = query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE)
    assert (miss.cached, hit.cached) == (False, True)
    assert hit.data == miss.data and hit.data["balance"] == Decimal("10")
    assert hit.position == miss.position > 0
    assert _read_model_queries(first) and not _read_model_queries(second)
    assert len(second) == 1  # only the projection's checkpoint and generation


def test_an_event_that_moves_the_projection_is_not_answered_from_the_old_entry() -> None:
    account = _funded_account("10")
    before = query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE)
    position = deposit(account, "5")
    run_projection(BALANCES)
    after = query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE)
    assert after.cached is False
    assert after.data["balance"] == Decimal("15") and after.position == position > before.position


def test_a_rebuild_changes_the_key_even_at_the_same_position() -> None:
    account = _funded_account("10")
    before = query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE)
    assert query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE).cached
    rebuild(BALANCES)
    after = query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE)
    assert after.position == before.position
    assert after.cached is False and after.data == before.data


def test_another_users_cached_answer_is_never_served() -> None:
    account = _funded_account("10")
    query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE)
    assert query_bus.ask(GetAccountBalance(account_id=account), actor=ALICE).cached
    with pytest.raises(AccountNotFound):
        query_bus.ask(GetAccountBalance(account_id=account), actor=BOB)
    staff = query_bus.ask(GetAccountBalance(account_id=account), actor=STAFF)
    assert staff.cached is False and staff.data["balance"] == Decimal("10")


def test_an_entry_past_its_ttl_is_served_while_it_refreshes_then_recomputed_past_the_window(clock: Clock) -> None:
    account = _funded_account("10")
    query = GetBalanceAsOf(account_id=account)
    computed_at = clock.now
    first = query_bus.ask(query, actor=ALICE)
    clock.advance(5)
    fresh = query_bus.ask(query, actor=ALICE)
    assert (first.cached, fresh.cached, CALLS.count(account)) == (False, True, 1)

    clock.advance(7)  # 12 s old: past the ttl, inside stale-while-revalidate
    served = query_bus.ask(query, actor=ALICE)
    refreshed_at = clock.now
    assert served.cached and served.data["as_of"] == computed_at and not served.stale
    assert CALLS.count(account) == 2  # the eager refresh task recomputed it in the background

    clock.advance(8)
    assert query_bus.ask(query, actor=ALICE).data["as_of"] == refreshed_at
    clock.advance(30)  # past ttl + swr of the refreshed entry
    expired = query_bus.ask(query, actor=ALICE)
    assert expired.cached is False and expired.data["as_of"] == clock.now
    assert CALLS.count(account) == 3


def test_a_scoped_answer_survives_other_events_until_its_scope_is_invalidated() -> None:
    account = _funded_account("10")
    query = GetScopedBalance(account_id=account)
    first = query_bus.ask(query, actor=ALICE)
    other = _funded_account("1")  # moves the projection, but not this account's scope
    assert query_bus.ask(query, actor=ALICE).cached
    deposit(account, "5")
    run_projection(BALANCES)
    with transaction.atomic():
        invalidate(f"test-account:{account}")
        assert query_bus.ask(query, actor=ALICE).cached  # not before the commit
    after = query_bus.ask(query, actor=ALICE)
    assert after.cached is False and after.data == Decimal("15") and after.position > first.position
    assert query_bus.ask(GetScopedBalance(account_id=other), actor=ALICE).data == Decimal("1")


def test_invalidating_many_scopes_at_once_invalidates_each_of_them_on_commit_and_no_other() -> None:
    from django.core.cache import cache

    from cqrs_core.queries import _scope_key, invalidate_many

    accounts = [_funded_account("10"), _funded_account("20"), _funded_account("30")]
    queries = [GetScopedBalance(account_id=account) for account in accounts]
    for query in queries:
        query_bus.ask(query, actor=ALICE)
    never_read = f"test-account:{UUID(int=7)}"  # a scope with no counter yet
    with transaction.atomic():
        invalidate_many([f"test-account:{accounts[0]}", f"test-account:{accounts[1]}", never_read])
        assert all(query_bus.ask(query, actor=ALICE).cached for query in queries)  # not before the commit
    assert [query_bus.ask(query, actor=ALICE).cached for query in queries] == [False, False, True]
    assert int(cache.get(_scope_key(never_read))) > 10**18, "a missing counter starts at the clock, not at 0"


def test_a_cached_entry_below_min_position_is_not_served() -> None:
    account = _funded_account("10")
    query = GetScopedBalance(account_id=account)
    cached = query_bus.ask(query, actor=ALICE)
    position = deposit(account, "5")
    run_projection(BALANCES)  # scope not invalidated: the old entry is still under the key
    assert query_bus.ask(query, actor=ALICE).data == Decimal("10")
    wanted = query_bus.ask(query, actor=ALICE, min_position=position, timeout=0.1)
    assert wanted.cached is False and not wanted.stale
    assert wanted.data == Decimal("15") and wanted.position >= position > cached.position


def test_a_cached_scoped_answer_costs_one_statement_and_one_cache_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.cache import cache

    account = _funded_account("10")
    query = GetScopedBalance(account_id=account)
    query_bus.ask(query, actor=ALICE)
    calls: list[str] = []
    depth = [0]

    def counted(op: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if not depth[0]:  # locmem's get_many calls get: count what the bus asked for
                calls.append(op)
            depth[0] += 1
            try:
                return real(*args, **kwargs)
            finally:
                depth[0] -= 1
        return call

    for op in ("get", "get_many", "set", "add", "incr"):
        monkeypatch.setattr(cache, op, counted(op, getattr(cache, op)))
    with CaptureQueriesContext(connection) as ctx:
        answer = query_bus.ask(query, actor=ALICE)
    assert answer.cached and answer.data == Decimal("10")
    assert calls == ["get_many"]
    assert len(ctx.captured_queries) == 1  # the projections' generations and positions


def test_an_evicted_scope_counter_makes_the_old_entry_unreachable() -> None:
    from django.core.cache import cache

    account = _funded_account("10")
    query = GetScopedBalance(account_id=account)
    query_bus.ask(query, actor=ALICE)
    deposit(account, "5")
    run_projection(BALANCES)
    cache.delete(f"cqrs:query-scope:test-account:{account}")  # evicted, instead of bumped
    answer = query_bus.ask(query, actor=ALICE)
    assert answer.cached is False and answer.data == Decimal("15")
    assert query_bus.ask(query, actor=ALICE).cached
