"""PostgreSQL restarted (fast and immediate shutdown) while deposits arrive over HTTP.

Every answer is a 201 whose events exist afterwards, or a 503 with ``Retry-After`` and
``retryable: true`` (the client retries it with the same ``Idempotency-Key``) — never a 500 or a
dropped connection; no command is half-applied or applied twice; the stream's versions stay
contiguous; the app serves again soon after the database returns, without a restart of its own.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from .support import PrivatePostgres, Stack, base_env, missing_tools, temporary_root, wait_until

pytestmark = [pytest.mark.services, pytest.mark.faults, pytest.mark.timeout(600),
              pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))]

#: How long the app may take to answer 201 again once PostgreSQL accepts connections.
RECOVERY_BOUND = 15.0
#: How long the database stays down.
OUTAGE = 2.0


@pytest.fixture
def stack() -> Iterator[tuple[Stack, PrivatePostgres]]:
    with temporary_root() as root:
        pg = PrivatePostgres(root)
        pg.init()
        app = Stack(root, base_env(DATABASE_URL=pg.url(), DATABASE_CONN_MAX_AGE="60"))
        try:
            app.manage("migrate", "--noinput", "-v", "0")
            app.create_user()
            app.serve(workers=2)
            yield app, pg
        finally:
            app.close()
            pg.stop("immediate")


class Depositor(threading.Thread):
    """Sends deposits back to back; a 503 is kept to be retried with the same key later."""

    def __init__(self, app: Stack) -> None:
        super().__init__(daemon=True)
        self.app = app
        self.stop = threading.Event()
        self.amounts: dict[str, Decimal] = {}
        self.done: set[str] = set()
        self.unavailable: list[tuple[str, dict[str, str], object]] = []
        self.bad: list[str] = []
        self.first_success_after: dict[float, float] = {}

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            key = str(uuid.uuid4())
            amount = Decimal(n % 97 + 1) + Decimal("0.01") * (n % 89)
            self.amounts[key] = amount
            self.send(key)

    def send(self, key: str) -> bool:
        try:
            reply = self.app.deposit(key, self.amounts[key])
        except OSError as exc:  # a reset or refused connection: the app itself failed
            self.bad.append(f"{key}: connection error {exc!r}")
            return False
        if reply.status == 201:
            self.done.add(key)
            return True
        if reply.status == 503:
            self.unavailable.append((key, dict(reply.headers), reply.body))
            time.sleep(0.05)
            return False
        self.bad.append(f"{key}: {reply.status} {reply.body!r}")
        return False


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_commands_survive_a_database_restart(stack: tuple[Stack, PrivatePostgres], mode: str) -> None:
    app, pg = stack
    client = Depositor(app)
    client.start()
    wait_until(lambda: len(client.done) >= 20, 60, "deposits flowing before the restart")

    pg.stop(mode)
    time.sleep(OUTAGE)
    pg.start()
    back = time.monotonic()
    done_when_back = len(client.done)
    recovered_in = wait_until(lambda: len(client.done) > done_when_back + 5, 60, "deposits succeed again")
    client.stop.set()
    client.join(timeout=60)

    # The client retries what was unavailable, with the same keys: each ends applied exactly once.
    pending = [key for key in client.amounts if key not in client.done]
    for key in pending:
        wait_until(lambda k=key: client.send(k), 30, f"retry of {key}", interval=0.2)

    assert client.bad == [], client.bad[:5]
    assert client.unavailable, "the restart should have made some requests fail (is the test too slow?)"
    for key, headers, body in client.unavailable:
        assert headers.get("retry-after"), (key, headers)
        assert isinstance(body, dict) and body["retryable"] is True and body["code"] == "service_unavailable", body
    assert recovered_in <= RECOVERY_BOUND, f"the app took {recovered_in:.1f} s after the database returned"

    user_stream = pg.query("SELECT DISTINCT stream_id FROM cqrs_event WHERE event_type = 'portfolio.FundsDeposited'")
    assert len(user_stream) == 1
    stream = user_stream[0][0]
    versions = [v for (v,) in pg.query("SELECT stream_version FROM cqrs_event WHERE stream_id = %s "
                                       "ORDER BY stream_version", stream)]
    assert versions == list(range(1, len(versions) + 1)), "stream versions have a hole"
    deposits = pg.query("SELECT data->>'amount', command_id FROM cqrs_event WHERE stream_id = %s "
                        "AND event_type = 'portfolio.FundsDeposited'", stream)
    assert len(deposits) == len(client.amounts), "a deposit was lost or applied twice"
    assert len({command_id for _, command_id in deposits}) == len(deposits)
    assert sum(Decimal(a) for a, _ in deposits) == sum(client.amounts.values())
    records = pg.query("SELECT count(*) FROM cqrs_command")[0][0]
    assert records == len(client.amounts), "every command answered once has one command record"

    # The read model catches up to exactly the events (nothing skipped, nothing doubled).
    app.manage("projections", "--run")
    cash = pg.query("SELECT cash FROM portfolio_portfolio")[0][0]
    assert Decimal(cash) == sum(client.amounts.values())
    print(f"\n{mode}: {len(client.amounts)} deposits, {len(client.unavailable)} answered 503 then retried, "
          f"app answered 201 again {recovered_in:.2f} s after PostgreSQL returned ({time.monotonic() - back:.1f} s)")
