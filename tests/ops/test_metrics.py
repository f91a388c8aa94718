"""/metrics: counters move with commands and queries, gauges come from the store, the token guards it."""
from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from cqrs_core.bus import command_bus
from cqrs_core.errors import DomainError
from cqrs_core.models import DeadLetter, ProjectionState
from cqrs_core.projections import ensure_states, run_projection
from cqrs_core.queries import query_bus
from cqrs_core.sagas.models import SagaInstance
from tests.bus_app.commands import Deposit, OpenAccount
from tests.bus_app.queries import GetAccountBalance

pytestmark = pytest.mark.django_db

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")


def scrape(client: APIClient | None = None, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics, keyed by (name, labels)."""
    response = (client or APIClient()).get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for line in response.content.decode().splitlines():
        match = SAMPLE.match(line)
        if line.startswith("#") or match is None:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_command_increments_its_counter_and_histogram(django_capture_on_commit_callbacks: Any) -> None:
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):  # events count once committed
        command_bus.dispatch(OpenAccount(account_id=uuid.uuid4()))

    after = scrape()
    ok = {"command": "tests.OpenAccount", "outcome": "ok"}
    assert value(after, "ledgerline_commands_total", **ok) == value(before, "ledgerline_commands_total", **ok) + 1
    count = "ledgerline_command_seconds_count"
    assert value(after, count, command="tests.OpenAccount") == value(before, count, command="tests.OpenAccount") + 1
    appended = ("ledgerline_events_appended_total", {"type": "bus_app.AccountOpened"})
    assert value(after, appended[0], **appended[1]) == value(before, appended[0], **appended[1]) + 1


def test_a_refused_command_counts_under_its_error_code() -> None:
    before = scrape()

    with pytest.raises(DomainError):
        command_bus.dispatch(Deposit(account_id=uuid.uuid4(), amount=Decimal("1")))

    after = scrape()
    refused = {"command": "tests.Deposit", "outcome": "account_not_found"}
    assert value(after, "ledgerline_commands_total", **refused) == value(before, "ledgerline_commands_total",
                                                                          **refused) + 1


def test_queries_count_cache_hits_apart_from_misses() -> None:
    account_id = uuid.uuid4()
    command_bus.dispatch(OpenAccount(account_id=account_id))
    run_projection("bus_app.balances")
    query = GetAccountBalance(account_id=account_id)
    before = scrape()

    first, second = query_bus.ask(query), query_bus.ask(query)

    after = scrape()
    name = query.query_type
    for cached, result in (("false", first), ("true", second)):
        assert result.cached is (cached == "true")
        assert value(after, "ledgerline_queries_total", query=name, cached=cached) == value(
            before, "ledgerline_queries_total", query=name, cached=cached) + 1
    assert value(after, "ledgerline_query_seconds_count", query=name) == value(
        before, "ledgerline_query_seconds_count", query=name) + 2


def test_store_gauges_show_lag_sagas_and_dead_letters() -> None:
    ensure_states()
    ProjectionState.objects.filter(name="bus_app.balances").update(status=ProjectionState.Status.PAUSED)
    command_bus.dispatch(OpenAccount(account_id=uuid.uuid4()))
    DeadLetter.objects.create(projection="bus_app.ledger", position=1, stream_id="s", event_type="t", error="boom")
    SagaInstance.objects.create(id=uuid.uuid4(), saga_type="tests.Transfer", status="compensating",
                                started_at="2026-01-01T00:00:00Z")

    samples = scrape()

    head = value(samples, "ledgerline_store_head_position")
    assert head >= 1  # positions are not reset between tests on PostgreSQL
    assert value(samples, "ledgerline_projection_lag_events", projection="bus_app.balances", status="paused") == head
    assert value(samples, "ledgerline_projection_lag_seconds", projection="bus_app.balances", status="paused") >= 0
    assert value(samples, "ledgerline_dead_letters_pending", projection="bus_app.ledger") == 1
    assert value(samples, "ledgerline_sagas", saga="tests.Transfer", status="compensating") == 1
    assert value(samples, "ledgerline_store_up") == 1


def test_the_token_guards_metrics_when_set(settings: Any) -> None:
    settings.METRICS_TOKEN = "s3cret"
    client = APIClient()

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert "ledgerline_store_up" in client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).content.decode()


def test_multiprocess_mode_aggregates_the_files_of_every_process(tmp_path: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A counter written by "another process" in the shared directory shows up in our scrape.
    from prometheus_client import CollectorRegistry, Counter, values

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: 4242))
    other = Counter("ledgerline_other_process", "written by another process", registry=CollectorRegistry())
    other.inc(3)

    samples = scrape()

    assert value(samples, "ledgerline_other_process_total") == 3
    assert value(samples, "ledgerline_store_up") == 1
