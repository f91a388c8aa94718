"""The exception handler on its own: unexpected errors, unavailable databases, context, logging."""
from __future__ import annotations

import logging
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from cqrs_core.api.errors import field_errors
from cqrs_core.errors import Conflict, ServiceUnavailable

from .support import assert_problem


class Overdrawn(Conflict):
    """The account would go below zero."""

    code = "overdrawn"


def _raising(exc: Exception):  # noqa: ANN202  (a view class)
    class Raising(APIView):
        permission_classes = [AllowAny]
        authentication_classes: list[type] = []

        def get(self, request: Request) -> Response:
            raise exc

    return Raising.as_view()


def _get(exc: Exception, **headers: str) -> Response:
    response = _raising(exc)(APIRequestFactory().get("/boom/", headers=headers))
    response.render()
    return response


def test_an_unexpected_exception_is_a_retryable_500_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ledgerline.api"):
        response = _get(RuntimeError("secret internals"))

    body = assert_problem(response, 500, "internal_error")
    assert body["retryable"] is True
    assert "secret internals" not in response.content.decode()
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info and record.exc_info[0] is RuntimeError


@pytest.mark.parametrize("exc", [OperationalError("connection refused"), InterfaceError("connection already closed"),
                                 ServiceUnavailable()])
def test_an_unreachable_database_is_a_retryable_503(exc: Exception) -> None:
    response = _get(exc)

    body = assert_problem(response, 503, "service_unavailable")
    assert body["retryable"] is True
    assert int(response["Retry-After"]) > 0


def test_a_domain_error_carries_its_context_as_exact_json(caplog: pytest.LogCaptureFixture) -> None:
    account = uuid.uuid4()
    with caplog.at_level(logging.WARNING, logger="ledgerline.api"):
        response = _get(Overdrawn(balance=Decimal("0.100000000000000005"), account_id=account, status=200, code="x"))

    body = assert_problem(response, 409, "overdrawn")
    assert body["balance"] == "0.100000000000000005"
    assert body["account_id"] == str(account)
    assert body["detail"] == "The account would go below zero."
    assert body["title"] == "Conflict"
    [record] = caplog.records
    assert record.levelno == logging.WARNING and not record.exc_info


def test_djangos_own_404_and_permission_denied_are_mapped() -> None:
    assert_problem(_get(Http404("no such thing")), 404, "not_found")
    assert_problem(_get(PermissionDenied()), 403, "forbidden")


def test_errors_are_problem_json_even_when_the_client_asks_for_html() -> None:
    response = _get(Overdrawn(), Accept="text/html")

    assert_problem(response, 409, "overdrawn")


def test_nested_validation_errors_are_flattened_to_paths() -> None:
    detail = {"items": [{}, {"price": ["Bad."]}], "limits": {"max": ["Too big."]}, "non_field_errors": ["Nope."]}

    assert field_errors(detail) == {"items.1.price": ["Bad."], "limits.max": ["Too big."], "non_field_errors": ["Nope."]}
    assert field_errors(["Not a dictionary."]) == {"non_field_errors": ["Not a dictionary."]}
