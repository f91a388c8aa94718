"""Fuzz every operation of the OpenAPI schema with schemathesis, in-process (WSGI), as a normal user.

For each operation Hypothesis generates valid and invalid requests from the schema; the checks say:
no 5xx (``not_a_server_error``), every response documented and matching its schema (status, content
type, headers, body), and nothing the schema calls invalid is accepted (``negative_data_rejection``).
``LEDGERLINE_FUZZ_EXAMPLES`` sets the examples per operation (default 100).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import AbstractUser
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import load_all_checks

load_all_checks()
_CHECKS = {f.__name__: f for f in schemathesis.checks.CHECKS.get_all()}
CHECKS = [_CHECKS[name] for name in (
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance", "negative_data_rejection",
)]
EXAMPLES = int(os.environ.get("LEDGERLINE_FUZZ_EXAMPLES", "100"))
#: The suite (and CI) replays the same examples every run, so a red build always means a change broke
#: something; ``LEDGERLINE_FUZZ_RANDOM=1`` explores new ones (run it now and then, and keep what it finds).
DERANDOMIZE = os.environ.get("LEDGERLINE_FUZZ_RANDOM") != "1"


def _spec() -> dict[str, Any]:
    """The schema ``/api/schema/`` serves, generated in-process (schemathesis' lazy fixture loader
    does not run under pytest 9, so the schema is built when the module loads)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    spec = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(spec, renderer_context={}))


@pytest.fixture(autouse=True)
def _requests_keep_the_test_connection() -> Iterator[None]:
    """As Django's test client does: the request signals do not close the connection, so the
    test's transaction (and its rollback) spans every request."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(django_user_model: type[AbstractUser]) -> str:
    user = django_user_model.objects.create_user("fuzzer", password="fuzzer-password-1")
    return Token.objects.create(user=user).key


schema = schemathesis.openapi.from_dict(_spec())
schema.app = get_wsgi_application()


@schema.include(path_regex=r"^/api/(?!test-bus/)").parametrize()
@hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                            HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@pytest.mark.django_db
def test_every_operation_survives_fuzzing(case: Any, token: str) -> None:
    cache.clear()  # throttle counters: the fuzzer is one client sending far more than a person would
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
