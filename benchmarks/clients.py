"""Load-generating clients, each a separate process (not a thread: the GIL would make 4 clients one).

:func:`run_clients` spawns ``n`` processes that set themselves up (Django, a warm-up call),
meet at a barrier, run their body until their deadline and send back a plain dict. A body is
``body(index, args, start) -> dict``; it calls ``start()`` when it is ready to be timed and
gets the deadline (``time.monotonic()``) back.
"""
from __future__ import annotations

import http.client
import json
import logging
import multiprocessing as mp
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import cpu

Body = Callable[[int, dict[str, Any], Callable[[], float]], dict[str, Any]]
#: Pairs the trading clients cycle through (several, so no position grows to its limit).
TRADE_PAIRS = ("BTC/USD", "ETH/USD", "SOL/USD", "BNB/USD", "LINK/USD", "LTC/USD")
#: USD notional of one benchmark trade (the minimum trade is 10 USD).
TRADE_USD = Decimal(15)


class ClientFailed(RuntimeError):
    """A client process raised; the message carries its traceback."""


def run_clients(body: Body, n: int, args: dict[str, Any], *, use_django: bool = True,
                timeout: float = 900.0, cpu_window: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run ``body`` in ``n`` processes at once; their results in client order.

    With ``cpu_window`` the host's CPU is read (``benchmarks.cpu``) when the clients start their
    timed window and when the last one has reported: ``cpu_window["before"]`` and ``["after"]``.
    """
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=_client_main, args=(body, i, args, use_django, barrier, results), daemon=True)
             for i in range(n)]
    for proc in procs:
        proc.start()
    try:
        try:
            barrier.wait(timeout=180)
        except Exception:
            pass  # a client that failed in set-up broke the barrier: its error is in the queue
        if cpu_window is not None:
            cpu_window["before"] = cpu.snapshot()
        collected = [results.get(timeout=timeout) for _ in procs]
        if cpu_window is not None:
            cpu_window["after"] = cpu.snapshot()
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    failed = [r["error"] for r in collected if "error" in r]
    if failed:
        raise ClientFailed(failed[0])
    return sorted(collected, key=lambda r: r["index"])


def _client_main(body: Body, index: int, args: dict[str, Any], use_django: bool, barrier: Any, results: Any) -> None:
    def start() -> float:
        barrier.wait(timeout=180)
        return time.monotonic() + args["seconds"]

    try:
        if use_django:
            import django

            django.setup()
        outcome = body(index, args, start)
        results.put({"index": index, **outcome})
    except BaseException:  # reported to the parent, which fails the scenario with it
        barrier.abort()
        results.put({"index": index, "error": traceback.format_exc()})


def window(results: list[dict[str, Any]]) -> float:
    """Seconds from the first client's start to the last client's end (wall clock)."""
    return max(r["t1"] for r in results) - min(r["t0"] for r in results)


def merged(results: list[dict[str, Any]], key: str = "latencies") -> list[float]:
    return [value for r in results for value in r[key]]


# --- orders ------------------------------------------------------------------------------------
def order(k: int, users: list[int], prices: dict[str, str]) -> tuple[int, str, str, Decimal, Decimal]:
    """The k-th order of a client: (user, pair, side, amount, price).

    Buys and sells alternate per client, user and pair, each sell undoing the client's own
    buy just before it: holdings never go negative, even when several clients share a user.
    """
    user = users[(k // 2) % len(users)]
    pair = TRADE_PAIRS[(k // (2 * len(users))) % len(TRADE_PAIRS)]
    price = Decimal(prices[pair])
    amount = (TRADE_USD / price).quantize(Decimal("1e-6"))
    return user, pair, "buy" if k % 2 == 0 else "sell", amount, price


class _RetryCounter(logging.Handler):
    """Counts the bus's "version conflict ... retrying" records (its only sign of a retry)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("version conflict"):
            self.retries += 1


def _count_retries() -> _RetryCounter:
    counter = _RetryCounter()
    log = logging.getLogger("ledgerline.commands")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(counter)
    return counter


# --- bodies ------------------------------------------------------------------------------------
def bus_trades(index: int, args: dict[str, Any], start: Callable[[], float]) -> dict[str, Any]:
    """ExecuteTrade through ``command_bus.dispatch`` as fast as it goes (closed loop)."""
    from cqrs_core.bus import command_bus
    from cqrs_core.commands import Actor
    from cqrs_core.errors import DomainError
    from trading.commands import ExecuteTrade

    users: list[int] = args["users"][index]
    counter = _count_retries()
    latencies, errors = [], Counter()
    k = 0

    def one() -> None:
        nonlocal k
        user, pair, side, amount, price = order(k, users, args["prices"])
        k += 1
        cmd = ExecuteTrade(user_id=user, trade_id=uuid.uuid4(), pair=pair, side=side, amount=amount, price=price)
        command_bus.dispatch(cmd, actor=Actor(user_id=user))

    for _ in range(4):
        one()  # warm-up: connections, caches, imports
    counter.retries = 0
    deadline, t0, cpu0 = start(), time.time(), time.process_time()
    while time.monotonic() < deadline:
        began = time.perf_counter()
        try:
            one()
        except DomainError as exc:
            errors[exc.code] += 1
            continue
        latencies.append((time.perf_counter() - began) * 1000)
    return {"latencies": latencies, "errors": dict(errors), "retries": counter.retries, "t0": t0, "t1": time.time(),
            "cpu": time.process_time() - cpu0}


def http_trades(index: int, args: dict[str, Any], start: Callable[[], float]) -> dict[str, Any]:
    """POST /api/trading/trades/ on one keep-alive connection, token auth, an Idempotency-Key each."""
    users, tokens = args["users"][index], args["tokens"][index]
    conn = http.client.HTTPConnection(args["host"], args["port"], timeout=30)
    latencies, errors = [], Counter()
    k = 0

    def one() -> int:
        nonlocal k
        user, pair, side, amount, price = order(k, users, args["prices"])
        k += 1
        body = json.dumps({"pair": pair, "side": side, "amount": str(amount), "price": str(price)})
        conn.request("POST", "/api/trading/trades/", body=body, headers={
            "Authorization": f"Token {tokens[users.index(user)]}", "Content-Type": "application/json",
            "Idempotency-Key": str(uuid.uuid4())})
        response = conn.getresponse()
        response.read()
        return response.status

    for _ in range(4):
        one()
    deadline, t0, cpu0 = start(), time.time(), time.process_time()
    while time.monotonic() < deadline:
        began = time.perf_counter()
        status = one()
        if status != 201:
            errors[str(status)] += 1
            continue
        latencies.append((time.perf_counter() - began) * 1000)
    conn.close()
    return {"latencies": latencies, "errors": dict(errors), "t0": t0, "t1": time.time(), "cpu": time.process_time() - cpu0}


def http_gets(index: int, args: dict[str, Any], start: Callable[[], float]) -> dict[str, Any]:
    """GETs on one keep-alive connection, phase after phase (``args["phases"]``: name, path, flush).

    With ``flush`` the cache's Redis database is emptied (untimed) before each request: a cold read.
    Without phases, one phase ``"get"`` of ``args["path"]`` until the deadline.
    """
    import redis

    token = args["tokens"][index][0] if args.get("tokens") else None
    headers = {"Authorization": f"Token {token}"} if token else {}
    flusher = redis.Redis.from_url(args["flush_url"]) if args.get("flush_url") else None
    conn = http.client.HTTPConnection(args["host"], args["port"], timeout=30)
    phases = args.get("phases") or [("get", args["path"], False)]

    def one(path: str) -> int:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status

    for _, path, _ in phases:
        one(path)
    deadline, out = start(), {}
    for name, path, flush in phases:
        out[name] = _phase(lambda p=path: one(p) == 200, flusher.flushdb if flush and flusher else None,
                           args, deadline)
        deadline = time.monotonic() + args["seconds"]
    conn.close()
    return {"phases": out, **(out["get"] if "get" in out else {})}


def bus_queries(index: int, args: dict[str, Any], start: Callable[[], float]) -> dict[str, Any]:
    """``query_bus.ask`` of GetPortfolio and GetTopCoins, cached then cold (cache emptied, untimed, before each)."""
    from django.core.cache import cache

    from cqrs_core.commands import SYSTEM, Actor
    from cqrs_core.queries import query_bus
    from market.queries import GetTopCoins
    from portfolio.queries import GetPortfolio

    user = args["users"][index][0]
    queries = {"portfolio": (GetPortfolio(user_id=user), Actor(user_id=user)),
               "top_coins": (GetTopCoins(window="24h", sort="volume"), SYSTEM)}
    hits = Counter()

    def ask(name: str) -> bool:
        query, actor = queries[name]
        hits[name] += query_bus.ask(query, actor=actor).cached
        return True

    wanted = args.get("queries", list(queries))
    for name in wanted:
        ask(name)
    deadline, out = start(), {}
    for name in wanted:
        for cold in (False, True):
            hits[name] = 0
            phase = f"{name}_{'uncached' if cold else 'cached'}"
            out[phase] = _phase(lambda n=name: ask(n), cache.clear if cold else None, args, deadline)
            out[phase]["cache_hits"] = hits[name]
            deadline = time.monotonic() + args["seconds"]
    return {"phases": out}


def _phase(call: Callable[[], bool], before: Callable[[], object] | None, args: dict[str, Any],
           deadline: float) -> dict[str, Any]:
    """Time ``call`` until the deadline (at most ``args["max_count"]`` times when ``before`` is given)."""
    latencies, failures = [], 0
    limit = args.get("max_count", 10**9) if before is not None else 10**9
    t0 = time.time()
    while time.monotonic() < deadline and len(latencies) < limit:
        if before is not None:
            before()
        began = time.perf_counter()
        ok = call()
        if ok:
            latencies.append((time.perf_counter() - began) * 1000)
        else:
            failures += 1
    return {"latencies": latencies, "failures": failures, "t0": t0, "t1": time.time()}


def paced_trades(index: int, args: dict[str, Any], start: Callable[[], float]) -> dict[str, Any]:
    """ExecuteTrade at a fixed rate (open loop), noting each commit's wall time and position.

    Every ``ryw_every``-th command is followed by a read-your-writes GetPortfolio with
    ``min_position``; its total time, its wait and whether it came back stale are noted.
    """
    from cqrs_core.bus import command_bus
    from cqrs_core.commands import Actor
    from cqrs_core.errors import DomainError
    from cqrs_core.queries import query_bus
    from portfolio.queries import GetPortfolio
    from trading.commands import ExecuteTrade

    users: list[int] = args["users"][index]
    interval = 1.0 / args["rate"]
    commits, reads, errors = [], [], Counter()
    k = 0
    deadline, t0, cpu0 = start(), time.time(), time.process_time()
    began = time.monotonic()
    while True:
        due = began + k * interval
        if due >= deadline or time.monotonic() >= deadline:
            break  # a client that fell behind stops at the deadline: the rate it reached is the figure
        time.sleep(max(0.0, due - time.monotonic()))
        user, pair, side, amount, price = order(k, users, args["prices"])
        k += 1
        cmd = ExecuteTrade(user_id=user, trade_id=uuid.uuid4(), pair=pair, side=side, amount=amount, price=price)
        try:
            result = command_bus.dispatch(cmd, actor=Actor(user_id=user))
        except DomainError as exc:
            errors[exc.code] += 1
            continue
        commits.append((time.time(), result.position))
        if k % args["ryw_every"] == 0:
            asked = time.perf_counter()
            answer = query_bus.ask(GetPortfolio(user_id=user), actor=Actor(user_id=user), min_position=result.position)
            reads.append(((time.perf_counter() - asked) * 1000, answer.waited_ms, answer.stale))
    return {"commits": commits, "reads": reads, "errors": dict(errors), "sent": k, "t0": t0, "t1": time.time(),
            "cpu": time.process_time() - cpu0}
