"""Request, correlation and command ids: from the HTTP request into logs, event metadata and tasks."""
from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from cqrs_core import signals
from cqrs_core.bus import command_bus, current_correlation_id
from cqrs_core.logs import JsonFormatter, RequestContextFilter, current_request_id
from cqrs_core.middleware import CORRELATION_NAMESPACE
from cqrs_core.models import StoredEvent
from tests.bus_app.commands import OpenAccount

ACCOUNTS = "/api/test-bus/accounts/"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the ``ledgerline`` loggers write through the JSON formatter and the context filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("ledgerline")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def api(django_user_model: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("carol", password="pw"))
    return client


def test_the_console_handler_stamps_context_ids_and_json_is_one_setting_away() -> None:
    console = django_settings.LOGGING["handlers"]["console"]
    assert console["filters"] == ["context"]
    assert console["formatter"] == django_settings.LOG_FORMAT == "plain"
    assert django_settings.LOGGING["formatters"]["json"] == {"()": "cqrs_core.logs.JsonFormatter"}


def test_a_json_log_line_carries_the_context_ids_extras_and_traceback(json_log: io.StringIO) -> None:
    correlation = uuid.uuid4()
    request_token, correlation_token = current_request_id.set("req-1"), current_correlation_id.set(correlation)
    try:
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("ledgerline.test").exception("went %s", "wrong", extra={"position": 7})
    finally:
        current_correlation_id.reset(correlation_token)
        current_request_id.reset(request_token)

    [line] = lines(json_log)
    assert line["message"] == "went wrong" and line["level"] == "ERROR" and line["logger"] == "ledgerline.test"
    assert line["request_id"] == "req-1" and line["correlation_id"] == str(correlation)
    assert line["command_id"] is None and line["position"] == 7
    assert "ValueError: bad" in line["exc_info"]


@pytest.mark.django_db
def test_an_http_command_logs_and_stores_the_requests_ids(api: APIClient, json_log: io.StringIO) -> None:
    correlation = uuid.uuid4()

    response = api.post(ACCOUNTS, {}, format="json",
                        headers={"X-Request-ID": "edge-abc.123", "X-Correlation-ID": str(correlation)})

    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == "edge-abc.123" and response["X-Correlation-ID"] == str(correlation)
    event = StoredEvent.objects.get(stream_id=f"bus_app.account-{response.json()['account_id']}")
    assert event.correlation_id == correlation
    assert event.metadata == {"request_id": "edge-abc.123"}
    [logged] = [line for line in lines(json_log) if line["logger"] == "ledgerline.commands"]
    assert logged["request_id"] == "edge-abc.123" and logged["correlation_id"] == str(correlation)
    assert logged["command_id"] == str(event.command_id)


@pytest.mark.django_db
def test_without_headers_the_request_id_is_generated_and_is_the_correlation_id(api: APIClient) -> None:
    response = api.post(ACCOUNTS, {}, format="json")

    request_id = response["X-Request-ID"]
    assert str(uuid.UUID(request_id)) == request_id == response["X-Correlation-ID"]
    event = StoredEvent.objects.get(stream_id=f"bus_app.account-{response.json()['account_id']}")
    assert str(event.correlation_id) == request_id


@pytest.mark.django_db
def test_a_request_id_that_is_not_a_uuid_gives_a_stable_derived_correlation_id(api: APIClient) -> None:
    first = api.get("/health/live/", headers={"X-Request-ID": "lb-42"})
    again = api.get("/health/live/", headers={"X-Request-ID": "lb-42"})

    assert first["X-Correlation-ID"] == again["X-Correlation-ID"] == str(uuid.uuid5(CORRELATION_NAMESPACE, "lb-42"))


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "new\nline", "<script>"])
def test_an_unsafe_request_id_is_replaced(bad: str) -> None:
    response = APIClient().get("/health/live/", headers={"X-Request-ID": bad})

    assert response["X-Request-ID"] != bad
    uuid.UUID(response["X-Request-ID"])


@pytest.mark.django_db(transaction=True)
def test_a_command_queued_during_a_request_keeps_its_correlation_id(api: APIClient) -> None:
    correlation, account_id = uuid.uuid4(), uuid.uuid4()
    seen: dict[str, Any] = {}

    def queue_in_request(request: Any) -> Any:
        from django.http import JsonResponse

        seen["command_id"] = command_bus.dispatch_async(OpenAccount(account_id=account_id))
        return JsonResponse({})

    from cqrs_core.middleware import RequestContextMiddleware

    RequestContextMiddleware(queue_in_request)(_request(str(correlation), "req-async"))

    event = StoredEvent.objects.get(stream_id=f"bus_app.account-{account_id}")
    assert event.command_id == seen["command_id"]
    assert event.correlation_id == correlation
    assert event.metadata == {"request_id": "req-async"}


def _request(correlation: str, request_id: str) -> Any:
    from django.test import RequestFactory

    return RequestFactory().get("/", HTTP_X_CORRELATION_ID=correlation, HTTP_X_REQUEST_ID=request_id)


def test_published_task_messages_carry_the_ids_and_the_worker_binds_them() -> None:
    correlation = uuid.uuid4()
    headers: dict[str, Any] = {}
    request_token, correlation_token = current_request_id.set("req-9"), current_correlation_id.set(correlation)
    try:
        signals.add_context_headers(headers=headers)
    finally:
        current_correlation_id.reset(correlation_token)
        current_request_id.reset(request_token)
    assert headers == {signals.CORRELATION_HEADER: str(correlation), signals.REQUEST_HEADER: "req-9"}

    class Task:  # the worker's view of the message: custom headers become request attributes
        request = type("Request", (), dict(headers))()

    signals.bind_task_context(task_id="t-1", task=Task())
    try:
        assert current_correlation_id.get() == correlation and current_request_id.get() == "req-9"
    finally:
        signals.unbind_task_context(task_id="t-1")
    assert current_correlation_id.get() is None and current_request_id.get() is None
