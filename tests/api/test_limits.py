"""Request limits: a JSON body over ``API_MAX_BODY_BYTES`` is a 413 and nothing is written."""
from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from .support import account_url, assert_problem, post_json, written


@pytest.mark.django_db
@override_settings(API_MAX_BODY_BYTES=1024)
def test_a_body_over_the_limit_is_413_and_writes_nothing(api: APIClient, account: str) -> None:
    before = written()
    padding = "x" * 2000
    response = post_json(api, account_url(account, "deposit"), f'{{"amount": "1", "note": "{padding}"}}')

    body = assert_problem(response, 413, "payload_too_large")
    assert "1024 bytes" in body["detail"]
    assert written() == before


@pytest.mark.django_db
@override_settings(API_MAX_BODY_BYTES=1024)
def test_a_body_at_the_limit_is_parsed(api: APIClient, account: str) -> None:
    raw = '{"amount": "1"}'
    raw = raw[:-1] + " " * (1024 - len(raw)) + "}"
    assert len(raw.encode()) == 1024

    response = post_json(api, account_url(account, "deposit"), raw)

    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_a_body_that_is_not_utf8_is_a_400(api: APIClient, account: str) -> None:
    before = written()
    response = api.post(account_url(account, "deposit"), data=b'{"amount": "\xff1"}', content_type="application/json")

    assert_problem(response, 400, "malformed_request")
    assert written() == before


@pytest.mark.django_db
def test_an_unknown_api_url_is_a_problem_404(api: APIClient) -> None:
    assert_problem(api.get("/api/portfolio/not-a-user/risk-limits/"), 404, "not_found")


@pytest.mark.django_db
def test_an_unknown_url_outside_the_api_is_django_s_404(api: APIClient) -> None:
    response = api.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/market/top-coins/?window=", "/api/trading/trades/?until=&side=buy"])
def test_a_blank_query_parameter_is_a_400_not_its_default(api: APIClient, url: str) -> None:
    body = assert_problem(api.get(url), 400, "validation_failed")

    blank = url.split("?")[1].split("&")[0].rstrip("=")
    assert body["errors"][blank] == ["May not be blank: give a value or leave the parameter out."]
