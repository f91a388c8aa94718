"""Request ids and correlation ids for every HTTP request, for logs, commands and queued tasks."""
from __future__ import annotations

import re
from collections.abc import Callable
from uuid import UUID, uuid4, uuid5

from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

from .bus import current_correlation_id
from .logs import current_request_id

REQUEST_ID_HEADER = "X-Request-ID"
CORRELATION_ID_HEADER = "X-Correlation-ID"
#: What a client-sent id may look like; anything else is replaced (it ends up in logs and headers).
SAFE_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
#: Namespace of correlation ids derived from ids that are not UUIDs (the bus stores a UUID).
CORRELATION_NAMESPACE = UUID("5b0f4a8e-6f3e-4c1a-9d8e-2f6c1c7a9b10")


def safe_id(value: str | None) -> str | None:
    """The header value when it is a safe id, else None."""
    return value if value is not None and SAFE_ID.fullmatch(value) else None


def as_correlation_id(value: str) -> UUID:
    """The id itself when it is a UUID, else a stable UUID derived from it."""
    try:
        return UUID(value)
    except ValueError:
        return uuid5(CORRELATION_NAMESPACE, value)


class RequestContextMiddleware:
    """Binds the request id and correlation id for the request and echoes them in the response.

    ``X-Request-ID`` is taken when it is safe (at most 128 characters of ``[A-Za-z0-9._:@/+=-]``),
    else generated. The correlation id is ``X-Correlation-ID``, else the request id, as a UUID
    (derived with uuid5 when it is not one). Commands dispatched while the request runs store it
    as their events' correlation id; tasks queued meanwhile carry both ids to the worker.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = safe_id(request.headers.get(REQUEST_ID_HEADER)) or str(uuid4())
        correlation_id = as_correlation_id(safe_id(request.headers.get(CORRELATION_ID_HEADER)) or request_id)
        request.request_id, request.correlation_id = request_id, correlation_id  # type: ignore[attr-defined]
        request_token = current_request_id.set(request_id)
        correlation_token = current_correlation_id.set(correlation_id)
        try:
            response = self.get_response(request)
        finally:
            current_correlation_id.reset(correlation_token)
            current_request_id.reset(request_token)
        response[REQUEST_ID_HEADER] = request_id
        response[CORRELATION_ID_HEADER] = str(correlation_id)
        return response


class LazyMessageMiddleware(MessageMiddleware):
    """Django's messages, with the storage made on first use: API requests never touch it.

    Django builds the cookie and session storages (and a cookie signer) for every request.
    A storage nobody used has nothing to store or clear, so its response is left alone.
    """

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:  # type: ignore[attr-defined]
            return response
        return super().process_response(request, response)  # type: ignore[no-any-return]
