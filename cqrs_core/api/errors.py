"""The one DRF exception handler: every error becomes the same ``application/problem+json`` body.

Body: ``type``, ``code`` (stable snake_case), ``title``, ``status``, ``detail``, ``retryable``,
``errors`` (field -> messages, validation only) plus the ``DomainError``'s context.
https://www.rfc-editor.org/rfc/rfc9457
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.views.defaults import page_not_found, server_error
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

from cqrs_core.errors import DomainError
from cqrs_core.serialization import to_json

logger = logging.getLogger("ledgerline.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:ledgerline:problem:"
#: Seconds a client should wait before retrying when the database is unreachable.
SERVICE_UNAVAILABLE_RETRY_AFTER = 5
#: Keys of the problem body that a DomainError's context may not override.
RESERVED_KEYS = frozenset({"type", "code", "title", "status", "detail", "retryable", "errors"})

# DRF exception class -> (code, title); the first matching class wins, so subclasses come first.
_API_EXCEPTIONS: tuple[tuple[type[exceptions.APIException], str, str], ...] = (
    (exceptions.ValidationError, "validation_failed", "Invalid request"),
    (exceptions.ParseError, "malformed_request", "Malformed request"),
    (exceptions.NotAuthenticated, "not_authenticated", "Authentication required"),
    (exceptions.AuthenticationFailed, "authentication_failed", "Authentication failed"),
    (exceptions.PermissionDenied, "forbidden", "Forbidden"),
    (exceptions.NotFound, "not_found", "Not found"),
    (exceptions.MethodNotAllowed, "method_not_allowed", "Method not allowed"),
    (exceptions.NotAcceptable, "not_acceptable", "Not acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type", "Unsupported media type"),
    (exceptions.Throttled, "throttled", "Too many requests"),
)
# Codes of our own APIException subclasses (cqrs_core.api.parsers.PayloadTooLarge, ...) come from
# their ``default_code``; the title from ``default_detail``.


class ProblemJSONRenderer(JSONRenderer):
    """Renders problem bodies as ``application/problem+json`` whatever the client asked for."""

    media_type = PROBLEM_CONTENT_TYPE
    format = "problem+json"


@dataclass
class Problem:
    """One error as an HTTP problem: status, body fields and extra headers."""

    status: int
    code: str
    title: str
    detail: str
    retryable: bool = False
    errors: dict[str, list[str]] | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        extra = {k: _jsonable(v) for k, v in self.context.items() if k not in RESERVED_KEYS}
        body = {
            "type": PROBLEM_TYPE_PREFIX + self.code, "code": self.code, "title": self.title,
            "status": self.status, "detail": self.detail, "retryable": self.retryable, **extra,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response:
    """DRF's ``EXCEPTION_HANDLER``: map any exception to a problem response (never re-raises)."""
    problem = to_problem(exc)
    if problem.status >= 500 and problem.code == "internal_error":
        logger.error("unhandled %s in %s", type(exc).__name__, _where(context), exc_info=exc)
    elif problem.status >= 500:
        logger.error("%s in %s: %s", problem.code, _where(context), exc, exc_info=exc)
    else:
        logger.warning("%s %s in %s: %s", problem.status, problem.code, _where(context), problem.detail)
    set_rollback()
    request = context.get("request")
    if request is not None:
        # finalize_response renders with the request's renderer; errors are always problem JSON.
        request.accepted_renderer, request.accepted_media_type = ProblemJSONRenderer(), PROBLEM_CONTENT_TYPE
    return Response(problem.body(), status=problem.status, headers=problem.headers,
                    content_type=PROBLEM_CONTENT_TYPE)


def to_problem(exc: Exception) -> Problem:
    """The problem an exception stands for; unknown exceptions are a retryable 500."""
    if isinstance(exc, DomainError):
        headers = {"Retry-After": str(SERVICE_UNAVAILABLE_RETRY_AFTER)} if exc.http_status == 503 else {}
        return Problem(exc.http_status, exc.code, exc.title, exc.detail, exc.retryable, context=exc.context,
                       headers=headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        return _api_problem(exc)
    if isinstance(exc, (OperationalError, InterfaceError)):
        return Problem(
            status.HTTP_503_SERVICE_UNAVAILABLE, "service_unavailable", "Service unavailable",
            "The database is unavailable; retry shortly.", retryable=True,
            headers={"Retry-After": str(SERVICE_UNAVAILABLE_RETRY_AFTER)},
        )
    return Problem(status.HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "Internal server error",
                   "An unexpected error occurred; retry later.", retryable=True)


def _api_problem(exc: exceptions.APIException) -> Problem:
    code, title = next(((c, t) for cls, c, t in _API_EXCEPTIONS if isinstance(exc, cls)),
                       (str(exc.default_code), str(exc.default_detail)))
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = str(exc.auth_header)
    if isinstance(exc, exceptions.Throttled):
        headers["Retry-After"] = str(int(exc.wait or 1))
        return Problem(exc.status_code, code, title, str(exc.detail), True, headers=headers,
                       context={"retry_after": int(exc.wait or 1)})
    if isinstance(exc, exceptions.ValidationError):
        return Problem(exc.status_code, code, title, "The request has invalid fields.",
                       errors=field_errors(exc.detail))
    return Problem(exc.status_code, code, title, str(exc.detail), headers=headers)


def field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten DRF error detail into ``{"field" | "parent.child" | "items.0.price": [messages]}``."""
    if isinstance(detail, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            flat.update(field_errors(value, f"{prefix}{key}."))
        return flat
    key = prefix[:-1] or api_settings.NON_FIELD_ERRORS_KEY
    if isinstance(detail, list) and any(isinstance(item, (Mapping, list)) for item in detail):
        flat = {}
        for index, item in enumerate(detail):
            flat.update(field_errors(item, f"{prefix}{index}."))
        return flat
    return {key: [str(m) for m in detail] if isinstance(detail, list) else [str(detail)]}


def _jsonable(value: Any) -> Any:
    """Context values as exact JSON (Decimals as strings; DRF's encoder would make them floats)."""
    try:
        return to_json(value)
    except TypeError:
        return str(value)


def _where(context: Mapping[str, Any]) -> str:
    request = context.get("request")
    return f"{request.method} {request.path}" if request is not None else "<no request>"


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: under ``/api/`` a URL that matches no route is a problem+json 404 like any other."""
    if not request.path.startswith("/api/"):
        return page_not_found(request, exception)
    return _problem_http_response(_api_problem(exceptions.NotFound("No API endpoint at this URL.")))


def api_server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: under ``/api/`` an error outside DRF's views is still a problem+json body."""
    if not request.path.startswith("/api/"):
        return server_error(request)
    return _problem_http_response(to_problem(RuntimeError("unhandled")))


def _problem_http_response(problem: Problem) -> HttpResponse:
    body = json.dumps(problem.body(), separators=(",", ":")).encode()
    response = HttpResponse(body, status=problem.status, content_type=PROBLEM_CONTENT_TYPE)
    for key, value in problem.headers.items():
        response[key] = value
    return response
