"""A real Celery worker binds the request id the message headers carry (services only).

``execute_command`` gets the correlation id as an argument; the request id reaches the worker only
through the headers ``before_task_publish`` adds, so finding it in the stored event's metadata
proves the publish → ``task_prerun`` path.
"""
from __future__ import annotations

import uuid

from django.db import transaction

from cqrs_core.bus import command_bus, current_correlation_id
from cqrs_core.logs import current_request_id
from cqrs_core.models import StoredEvent
from tests.bus_app.commands import OpenAccount
from tests.projections.test_worker import Workers, wait_for, workers  # noqa: F401  (fixture)
from tests.projections.test_worker import pytestmark as real_worker_marks

# Same needs as the projection worker tests: a real broker and PostgreSQL shared with the worker.
pytestmark = real_worker_marks


def test_a_queued_command_runs_on_the_worker_with_the_requests_ids(workers: Workers) -> None:  # noqa: F811
    workers.start()
    account_id, correlation = uuid.uuid4(), uuid.uuid4()
    request_token, correlation_token = current_request_id.set("req-worker"), current_correlation_id.set(correlation)
    try:
        with transaction.atomic():
            command_bus.dispatch_async(OpenAccount(account_id=account_id))
    finally:
        current_correlation_id.reset(correlation_token)
        current_request_id.reset(request_token)

    stream = f"bus_app.account-{account_id}"
    wait_for(lambda: StoredEvent.objects.filter(stream_id=stream).exists(), "the worker to run the command", workers)
    event = StoredEvent.objects.get(stream_id=stream)
    assert event.correlation_id == correlation
    assert event.metadata == {"request_id": "req-worker"}
