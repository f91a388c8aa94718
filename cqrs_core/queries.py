"""The query bus: read models in, plain data out, cached by what makes an answer stale.

* A query is a frozen dataclass; its handler ``(query, ctx) -> plain data`` reads read models
  and returns dicts, lists or dataclasses (never querysets), so answers pickle into the cache.
* The cache key carries everything that makes an entry wrong: the query type and fields, the
  actor (user id and staff flag: one user's answer is never served to another), the
  ``generation`` of each projection read (bumped by a rebuild) and either the query's scope
  name (when it declares ``scope``) or the projections' checkpoint positions. A scoped entry
  also holds the scope's version (bumped by :func:`invalidate`) and is served only while the
  scope is still at that version: the entry and the version come back in one cache round trip.
  A served entry therefore reflects the current read models; the TTL only bounds
  time-dependent answers and forgotten scopes.
* Freshness: within ``ttl`` an entry is served as is; between ``ttl`` and ``ttl + swr`` it is
  served too and refreshed in the background (Celery task ``cqrs_core.refresh_query``); after
  that it is recomputed. ``QueryResult.stale`` never means "old cache entry": it means the
  answer does not reflect the ``min_position`` the caller asked for (the wait timed out), which
  is what a client reading its own writes must know. ``cached`` and ``computed_at`` tell the rest.
* ``min_position`` waits, bounded by ``CQRS_MIN_POSITION_WAIT``, until every projection of the
  query reflects that position: LISTEN/NOTIFY on PostgreSQL, backoff polling elsewhere.
* Cache errors degrade to computing from the database; they are logged, never raised.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from .commands import SYSTEM, Actor
from .models import ProjectionState
from .projections import IMMEDIATE, NOTIFY_CHANNEL, caught_up, get_projection
from .serialization import decode_dataclass, to_json
from .store import head_position

logger = logging.getLogger("ledgerline.queries")

Q = TypeVar("Q", bound="Query")
#: Polling on databases without LISTEN: first and longest pause between checks, in seconds.
POLL_FIRST, POLL_CAP = 0.005, 0.1


@dataclass(frozen=True, kw_only=True)
class Query:
    """Base of all queries. Subclasses may pass ``name=`` to fix their registered name."""

    query_type: ClassVar[str] = ""

    def __init_subclass__(cls, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.query_type = name or f"{cls.__module__.split('.')[0]}.{cls.__name__}"

    def to_data(self) -> dict[str, Any]:
        return to_json(self)

    def fingerprint(self) -> str:
        """A digest of the query's type and fields: equal queries give equal digests."""
        body = json.dumps([self.query_type, self.to_data()], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class CachePolicy:
    """How long an answer is fresh (``ttl``) and then servable while it refreshes (``stale_while_revalidate``)."""

    ttl: float = 300
    stale_while_revalidate: float = 0


@dataclass(frozen=True, kw_only=True)
class QueryContext:
    """What a handler may know besides the query: who asks and the time."""

    actor: Actor
    now: dt.datetime


@dataclass(frozen=True, kw_only=True)
class QueryResult:
    """An answer and how fresh it is: ``position`` is the lowest checkpoint it reflects.

    ``stale`` is true only when the caller asked for a ``min_position`` the answer does not reach.
    """

    data: Any
    position: int
    stale: bool = False
    cached: bool = False
    waited_ms: float = 0.0
    computed_at: dt.datetime | None = None


QueryHandler = Callable[[Any, QueryContext], Any]
Scope = Callable[[Any, Actor], str]


@dataclass(frozen=True)
class QuerySpec:
    """A registered query handler, the projections it reads and how its answers are cached."""

    query_type: type[Query]
    handler: QueryHandler
    projections: tuple[str, ...]
    cache: CachePolicy | None
    scope: Scope | None


_HANDLERS: dict[type[Query], QuerySpec] = {}
_BY_NAME: dict[str, type[Query]] = {}


def query_handler(
    query_type: type[Q],
    *,
    projections: Sequence[str],
    cache: CachePolicy | None = None,
    scope: Callable[[Q, Actor], str] | None = None,
) -> Callable[[QueryHandler], QueryHandler]:
    """Register the handler of a query type, reading the read models of ``projections``.

    ``scope(query, actor)`` names what the answer depends on (``"account:<id>"``); projections
    call :func:`invalidate` with it when those rows change. Without it the key follows the
    projections' checkpoints, so any event they apply invalidates the answer.
    """

    def register(fn: QueryHandler) -> QueryHandler:
        known = _HANDLERS.get(query_type)
        if known is not None and known.handler.__qualname__ != fn.__qualname__:
            raise ValueError(f"{query_type.__name__} already has a handler")
        _HANDLERS[query_type] = QuerySpec(query_type, fn, tuple(projections), cache, scope)
        _BY_NAME[query_type.query_type] = query_type
        return fn

    return register


def handler_for(query: Query | type[Query]) -> QuerySpec:
    key = query if isinstance(query, type) else type(query)
    try:
        return _HANDLERS[key]
    except KeyError:
        raise LookupError(f"no handler registered for {key.__name__}") from None


def query_from_data(query_type: str, data: dict[str, Any]) -> Query:
    """Rebuild a query sent to a worker as ``(query_type, data)``."""
    return decode_dataclass(_BY_NAME[query_type], data)


# --- cache access that never raises ------------------------------------------------------------
# django-redis with IGNORE_EXCEPTIONS already swallows connection errors for get/set, but not
# every backend or operation does (incr of a missing key, pickling errors, a misconfigured
# backend), and a read must never fail because the cache did.
def _cache_call(op: str, *args: Any, **kwargs: Any) -> Any:
    try:
        return getattr(cache, op)(*args, **kwargs)
    except Exception as exc:
        logger.warning("query cache %s failed, answering from the database: %s", op, exc)
        return None


def _scope_key(scope: str) -> str:
    return f"cqrs:query-scope:{scope}"


def scope_version(scope: str) -> str | None:
    """The current version of a scope; None when the cache cannot say (then nothing is cached)."""
    return scope_version_at(_scope_key(scope))


def scope_version_at(key: str) -> str | None:
    """The version held by a scope's counter key, starting the counter when it is missing.

    A missing counter starts at the clock in nanoseconds, not 0: an evicted counter must not
    come back to a value old entries were computed at.
    """
    version = _cache_call("get", key)
    if version is None:
        _cache_call("add", key, time.time_ns(), timeout=None)
        version = _cache_call("get", key)
    return None if version is None else str(version)


def invalidate(scope: str) -> None:
    """Make cached answers of ``scope`` unreachable once the current transaction commits.

    Called by projections; on commit, so no reader can cache the rows of the transaction that
    is still open under the new version. Without a transaction it bumps at once.
    """
    transaction.on_commit(lambda: _bump(scope))


def invalidate_many(scopes: Iterable[str]) -> None:
    """:func:`invalidate` of many scopes, bumped together on commit: one round trip on Redis, not one per scope."""
    names = list(scopes)
    if names:
        transaction.on_commit(lambda: _bump_many(names))


def _bump(scope: str) -> None:
    key = _scope_key(scope)
    try:
        cache.incr(key)
    except ValueError:  # missing counter: any fresh start differs from the old entries' versions
        _cache_call("set", key, time.time_ns(), timeout=None)
    except Exception as exc:
        logger.warning("could not invalidate query scope %s: %s", scope, exc)


#: ``_bump`` of every key in one command: +1, or the clock (ARGV[1]) when the counter is missing.
_BUMP_MANY = """
for _, key in ipairs(KEYS) do
    if redis.call('exists', key) == 1 then redis.call('incr', key) else redis.call('set', key, ARGV[1]) end
end
"""


def _bump_many(scopes: Sequence[str]) -> None:
    """``_bump`` of each scope; on django-redis in one round trip (a script), not one per scope."""
    client = getattr(cache, "client", None)
    if client is None or not hasattr(client, "get_client"):
        for scope in scopes:
            _bump(scope)
        return
    try:
        redis = client.get_client(write=True)
        redis.eval(_BUMP_MANY, len(scopes), *(client.make_key(_scope_key(scope)) for scope in scopes), time.time_ns())
    except Exception as exc:
        logger.warning("could not invalidate %d query scopes: %s", len(scopes), exc)


# --- the bus -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Snapshot:
    """The projections' generations and effective positions, read before the handler runs."""

    generations: tuple[int, ...]
    positions: tuple[int, ...]

    @property
    def position(self) -> int:
        return min(self.positions, default=0)


@dataclass(frozen=True)
class _Entry:
    """What the cache holds for one key; ``version`` is the scope's version it was computed at."""

    data: Any
    position: int
    computed_at: dt.datetime
    version: str | None = None


@dataclass(frozen=True)
class _Key:
    """Where an answer is cached, and the scope counter (if any) it must still match."""

    entry: str
    scope: str | None


class QueryBus:
    """Answers queries from read models, through the cache, optionally after waiting for a position."""

    def __init__(self, *, clock: Callable[[], dt.datetime] = timezone.now) -> None:
        self.clock = clock
        #: Called with (query_type, cached, elapsed_ms) after each answer, e.g. by the metrics.
        self.observers: list[Callable[[str, bool, float], None]] = []

    def ask(self, query: Query, *, actor: Actor = SYSTEM, min_position: int | None = None,
            timeout: float | None = None) -> QueryResult:
        """Answer a query; with ``min_position``, wait (bounded) for the read models to reach it.

        Domain errors of the handler (``NotFound`` for someone else's row) propagate.
        """
        spec = handler_for(query)
        asked = time.perf_counter()
        waited_ms = 0.0
        reached = False
        if min_position is not None:
            wait = settings.CQRS_MIN_POSITION_WAIT if timeout is None else timeout
            started = time.monotonic()
            reached = wait_for_position(spec.projections, min_position, wait)
            waited_ms = (time.monotonic() - started) * 1000
        result = self._answer(spec, query, actor, min_position or 0)
        if reached and result.position < min_position:  # type: ignore[operator]
            # A checkpoint only moves on the projection's own event types: one that had nothing to
            # apply up to min_position reflects it all the same (caught_up checked exactly that).
            result = dataclasses.replace(result, position=min_position)
        stale = min_position is not None and result.position < min_position
        for observer in self.observers:
            observer(query.query_type, result.cached, (time.perf_counter() - asked) * 1000)
        return dataclasses.replace(result, stale=stale, waited_ms=waited_ms)

    def refresh(self, query: Query, *, actor: Actor = SYSTEM) -> QueryResult:
        """Recompute a query and store the answer, whatever the cache holds."""
        spec = handler_for(query)
        snapshot = _snapshot(spec.projections)
        key = self._key(spec, query, actor, snapshot)
        version = scope_version_at(key.scope) if key.scope is not None else None
        if key.scope is not None and version is None:
            return self._compute(spec, query, actor, snapshot, None, None)
        return self._compute(spec, query, actor, snapshot, key.entry, version)

    def _answer(self, spec: QuerySpec, query: Query, actor: Actor, min_position: int) -> QueryResult:
        snapshot = _snapshot(spec.projections)
        policy = spec.cache
        if policy is None:
            return self._compute(spec, query, actor, snapshot, None, None)
        key = self._key(spec, query, actor, snapshot)
        found = _cache_call("get_many", [k for k in (key.entry, key.scope) if k is not None]) or {}
        version = None
        if key.scope is not None:
            version = str(found[key.scope]) if found.get(key.scope) is not None else scope_version_at(key.scope)
            if version is None:  # the cache cannot say which version is current: do not cache
                return self._compute(spec, query, actor, snapshot, None, None)
        entry = found.get(key.entry)
        # An entry below min_position is never served for this request, however young it is.
        if isinstance(entry, _Entry) and entry.version == version and entry.position >= min_position:
            age = (self.clock() - entry.computed_at).total_seconds()
            if age <= policy.ttl + policy.stale_while_revalidate:
                if age > policy.ttl:
                    _schedule_refresh(query, actor, key.entry, policy)
                return QueryResult(data=entry.data, position=entry.position, cached=True,
                                   computed_at=entry.computed_at)
        return self._compute(spec, query, actor, snapshot, key.entry, version)

    def _compute(self, spec: QuerySpec, query: Query, actor: Actor, snapshot: _Snapshot,
                 key: str | None, version: str | None) -> QueryResult:
        # The snapshot and the scope's version were read before the handler: the rows may be
        # newer than they say, never older.
        now = self.clock()
        data = spec.handler(query, QueryContext(actor=actor, now=now))
        if key is not None and spec.cache is not None:
            timeout = spec.cache.ttl + spec.cache.stale_while_revalidate
            _cache_call("set", key, _Entry(data, snapshot.position, now, version), timeout=timeout)
        return QueryResult(data=data, position=snapshot.position, computed_at=now)

    def _key(self, spec: QuerySpec, query: Query, actor: Actor, snapshot: _Snapshot) -> _Key:
        """The entry's cache key and, for a scoped query, the key of the scope's version counter."""
        scope = _scope_key(spec.scope(query, actor)) if spec.scope is not None else None
        freshness = f"scope={scope}" if scope is not None else f"positions={snapshot.positions}"
        who = "system" if actor.is_system else f"user={actor.user_id},staff={actor.is_staff}"
        parts = [query.fingerprint(), who, f"generations={snapshot.generations}", freshness]
        digest = hashlib.sha256("|".join(parts).encode()).hexdigest()
        return _Key(f"cqrs:query:{query.query_type}:{digest}", scope)


def _snapshot(names: Sequence[str]) -> _Snapshot:
    """Generations and positions of the projections; a running immediate one is at the head."""
    rows = _state_rows(names)
    generations, positions = [], []
    head: int | None = None
    for name in names:
        generation, position, status = rows.get(name, (1, 0, ProjectionState.Status.RUNNING))
        if get_projection(name).mode == IMMEDIATE and status == ProjectionState.Status.RUNNING:
            head = head_position() if head is None else head
            position = head
        generations.append(generation)
        positions.append(position)
    return _Snapshot(tuple(generations), tuple(positions))


def _state_rows(names: Sequence[str]) -> dict[str, tuple[int, int, str]]:
    """Generation, position and status of each named projection, in one statement.

    Raw SQL: on a cached answer this is the only database work, and building the equivalent
    queryset cost more than running it.
    """
    if not names:
        return {}
    quote = connection.ops.quote_name
    meta = ProjectionState._meta
    columns = ", ".join(quote(meta.get_field(f).column) for f in ("name", "generation", "position", "status"))
    placeholders = ", ".join(["%s"] * len(names))
    sql = f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {quote(meta.get_field('name').column)} IN ({placeholders})"
    with connection.cursor() as cursor:
        cursor.execute(sql, list(names))
        return {name: (generation, position, status) for name, generation, position, status in cursor.fetchall()}


def _schedule_refresh(query: Query, actor: Actor, key: str, policy: CachePolicy) -> None:
    """Queue one background refresh per key and stale window; a failed enqueue only means no refresh."""
    from .tasks import refresh_query

    if not _cache_call("add", f"{key}:refreshing", 1, timeout=max(1, int(policy.stale_while_revalidate))):
        return
    # Reads write nothing the refresh must see, so there is no commit to wait for.
    try:
        refresh_query.apply_async(args=[query.query_type, query.to_data(), actor.user_id, actor.is_staff])
    except Exception as exc:
        logger.warning("could not queue a refresh of %s: %s", query.query_type, exc)


# --- waiting for a position --------------------------------------------------------------------
def wait_for_position(names: Sequence[str], position: int, timeout: float) -> bool:
    """Wait until every projection in ``names`` reflects ``position``; False when ``timeout`` ran out."""
    deadline = time.monotonic() + max(0.0, timeout)
    if connection.vendor == "postgresql":
        return _listen_until(names, position, deadline)
    return _poll_until(names, position, deadline)


def _reached(names: Iterable[str], position: int) -> bool:
    return all(caught_up(name, position) for name in names)


def _poll_until(names: Sequence[str], position: int, deadline: float) -> bool:
    pause = POLL_FIRST
    while not _reached(names, position):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, POLL_CAP)
    return True


def _listen_until(names: Sequence[str], position: int, deadline: float) -> bool:
    """LISTEN, check, then sleep on notifications until the check passes or the deadline.

    A dedicated short-lived autocommit connection, not Django's: Django's may be inside an
    atomic block (ATOMIC_REQUESTS, a test, a caller's transaction), where LISTEN only takes
    effect at commit and notifications are held until the transaction ends, and a pooled
    connection (CONN_MAX_AGE) left listening would pile up notifications for its next user.
    https://www.postgresql.org/docs/current/sql-listen.html
    https://www.psycopg.org/psycopg3/docs/advanced/async.html#asynchronous-notifications
    """
    import psycopg

    if _reached(names, position):  # the common case costs no extra connection
        return True
    # Django's cursor class and adapters belong to its own wrapper; a bare connection needs neither.
    params = {k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")}
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")  # a constant identifier, not user input
        try:
            # LISTEN before the check: a NOTIFY committed in between is queued, not lost.
            reached = _reached(names, position)
            while not reached:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                notes = list(listener.notifies(timeout=remaining, stop_after=1))
                # Other projections' moves wake us too; only ours are worth a query.
                reached = any(_concerns(n.payload, names) for n in notes) and _reached(names, position)
            return True
        finally:
            listener.execute(f"UNLISTEN {NOTIFY_CHANNEL}")


def _concerns(payload: str, names: Sequence[str]) -> bool:
    """Whether a ``"name:position"`` notification is about one of ``names``."""
    return payload.rpartition(":")[0] in names


query_bus = QueryBus()
