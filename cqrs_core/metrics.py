"""Prometheus metrics: counted as things happen, or computed from the database at scrape time.

Counted (per process; hooked to the buses in ``CqrsCoreConfig.ready``):
``ledgerline_commands_total{command,outcome}``, ``ledgerline_command_seconds{command}``,
``ledgerline_queries_total{query,cached}`` (hit rate: ``cached="true"`` over all),
``ledgerline_query_seconds{query}`` and ``ledgerline_events_appended_total{type}`` (events of
commands, counted after commit; the saga engine's own bookkeeping events are not counted).

Computed at scrape time by :class:`StoreCollector`: projection lag (events and seconds) by
projection and status, pending dead letters by projection, sagas by type and status, the store's
head position, and ``ledgerline_store_up`` (0 when the database could not be read).

Several processes (gunicorn workers, Celery prefork children) each count in their own memory, so
one scrape would see one process. Set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by
the processes of a host (wiped at deploy) and the ``/metrics`` view aggregates their files with
``MultiProcessCollector`` (gunicorn's ``child_exit`` hook should call
``prometheus_client.multiprocess.mark_process_dead(worker.pid)``; Celery workers on the host
share the directory too). https://prometheus.github.io/client_python/multiprocess/
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .events import RecordedEvent

logger = logging.getLogger("ledgerline.metrics")

commands_total = Counter("ledgerline_commands", "Commands handled, by type and outcome (ok, replayed, "
                         "an error code, error).", ["command", "outcome"])
command_seconds = Histogram("ledgerline_command_seconds", "Time to handle a command, middleware included.",
                            ["command"])
queries_total = Counter("ledgerline_queries", "Queries answered, by type and whether from the cache.",
                        ["query", "cached"])
query_seconds = Histogram("ledgerline_query_seconds", "Time to answer a query, min_position wait included.",
                          ["query"])
events_appended_total = Counter("ledgerline_events_appended", "Events appended by commands, by type.", ["type"])


def observe_command(command_type: str, outcome: str, elapsed_ms: float) -> None:
    """``command_bus.observers`` hook."""
    commands_total.labels(command=command_type, outcome=outcome).inc()
    command_seconds.labels(command=command_type).observe(elapsed_ms / 1000)


def observe_query(query_type: str, cached: bool, elapsed_ms: float) -> None:
    """``query_bus.observers`` hook."""
    queries_total.labels(query=query_type, cached="true" if cached else "false").inc()
    query_seconds.labels(query=query_type).observe(elapsed_ms / 1000)


def count_appended(recorded: Sequence[RecordedEvent]) -> None:
    """``command_bus.after_commit_hooks`` hook: only committed events count."""
    for event in recorded:
        events_appended_total.labels(type=event.event_type).inc()


class StoreCollector(Collector):
    """Gauges read from the database when Prometheus scrapes; a few grouped queries."""

    def describe(self) -> list[GaugeMetricFamily]:
        # Registering a collector without describe() would run collect(), and so the database, at import.
        return list(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = self._families()
        try:
            self._fill(*families[:-1])
        except Exception:
            logger.exception("could not read the store for metrics")
            families = self._families()
            families[-1].add_metric([], 0)
            return iter(families[-1:])
        families[-1].add_metric([], 1)
        return iter(families)

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("ledgerline_projection_lag_events", "Events of its types a projection is behind.",
                              labels=["projection", "status"]),
            GaugeMetricFamily("ledgerline_projection_lag_seconds", "Age of a projection's oldest unapplied event.",
                              labels=["projection", "status"]),
            GaugeMetricFamily("ledgerline_dead_letters_pending", "Pending dead letters, by projection.",
                              labels=["projection"]),
            GaugeMetricFamily("ledgerline_sagas", "Saga instances, by type and status.", labels=["saga", "status"]),
            GaugeMetricFamily("ledgerline_store_head_position", "Highest global position in the event store."),
            GaugeMetricFamily("ledgerline_store_up", "1 when the last scrape could read the database."),
        ]

    @staticmethod
    def _fill(lag_events: GaugeMetricFamily, lag_seconds: GaugeMetricFamily, dead: GaugeMetricFamily,
              sagas: GaugeMetricFamily, head: GaugeMetricFamily) -> None:
        from django.db.models import Count

        from .projections import lag
        from .sagas.models import SagaInstance
        from .store import head_position

        for entry in lag():
            lag_events.add_metric([entry.name, entry.status], entry.events_behind)
            lag_seconds.add_metric([entry.name, entry.status], entry.seconds_behind)
            dead.add_metric([entry.name], entry.pending_dead_letters)
        counts = SagaInstance.objects.values_list("saga_type", "status").annotate(n=Count("id")).order_by()
        for saga_type, status, n in counts:
            sagas.add_metric([saga_type, status], n)
        head.add_metric([], head_position())


store_collector = StoreCollector()
REGISTRY.register(store_collector)


def exposition() -> bytes:
    """The text exposition of every metric, across processes when ``PROMETHEUS_MULTIPROC_DIR`` is set."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(store_collector)
    return generate_latest(registry)
