"""The web layer's cheaper paths give the answers of the ones they replace.

Token authentication in one plain SELECT, the throttle's one-round-trip Redis window, the
health check that looks at the socket, the content negotiation shortcut, shallow-copied
serializer fields and the lazily made messages storage.
"""
from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import AbstractUser
from django.core.cache import caches
from django.db import connection
from django.http import Http404
from django.test import RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from cqrs_core.api.authentication import TokenAuthentication
from cqrs_core.api.negotiation import ContentNegotiation
from cqrs_core.api.serializers import _leaf_fields
from cqrs_core.api.throttling import CommandRateThrottle, _redis_backend
from cqrs_core.middleware import LazyMessageMiddleware
from trading.apis import ExecuteTradeInputSerializer
from trading.strategy_apis import StrategyRulesInputSerializer

from .support import account_url, assert_problem

pytestmark = pytest.mark.django_db


# --- token authentication ----------------------------------------------------------------------
def test_the_token_and_its_user_are_the_instances_the_orm_gives(alice: AbstractUser) -> None:
    token = Token.objects.create(user=alice)

    user, auth = TokenAuthentication().authenticate_credentials(token.key)

    expected = Token.objects.select_related("user").get(key=token.key)
    assert user == expected.user and auth == expected and auth.user is user
    fields = [f.attname for f in type(user)._meta.concrete_fields]
    assert [getattr(user, f) for f in fields] == [getattr(expected.user, f) for f in fields]
    assert (auth.key, auth.user_id, auth.created) == (expected.key, expected.user_id, expected.created)
    assert user._state.adding is False and user._state.db == "default"


def test_an_unknown_token_is_refused_with_drfs_message() -> None:
    with pytest.raises(AuthenticationFailed, match="Invalid token."):
        TokenAuthentication().authenticate_credentials("0" * 40)


def test_an_inactive_users_token_is_401(alice: AbstractUser, account: str, api: APIClient) -> None:
    alice.is_active = False
    alice.save()

    response = api.get(account_url(account))

    body = assert_problem(response, 401, "authentication_failed")
    assert "inactive" in body["detail"]


def test_a_deleted_token_stops_working_at_once(alice: AbstractUser, account: str, api: APIClient) -> None:
    assert api.get(account_url(account)).status_code == 200
    Token.objects.filter(user=alice).delete()

    assert_problem(api.get(account_url(account)), 401, "authentication_failed")


# --- the throttle's window on Redis ------------------------------------------------------------
redis_only = pytest.mark.skipif(_redis_backend(caches["default"]) is None, reason="the cache is not Redis")


def _throttle(settings: Any, rate: str) -> CommandRateThrottle:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"commands": rate, "auth": rate}}
    return CommandRateThrottle()


def _request(user: AbstractUser) -> Request:
    request = Request(RequestFactory().post("/"))
    request.user = user
    return request


@redis_only
def test_the_redis_window_refuses_past_the_rate_and_says_how_long_to_wait(settings: Any, alice: AbstractUser,
                                                                          bob: AbstractUser) -> None:
    answers = []
    for _ in range(4):
        throttle = _throttle(settings, "3/min")
        answers.append(throttle.allow_request(_request(alice), None))

    assert answers == [True, True, True, False]
    assert 0 < throttle.wait() <= 60
    assert _throttle(settings, "3/min").allow_request(_request(bob), None)  # per user


@redis_only
def test_the_redis_window_forgets_requests_older_than_the_period(settings: Any, alice: AbstractUser) -> None:
    now = [1_000_000.0]
    with mock.patch.object(CommandRateThrottle, "timer", side_effect=lambda: now[0]):
        assert [_throttle(settings, "2/min").allow_request(_request(alice), None) for _ in range(3)] == [
            True, True, False]
        now[0] += 60  # DRF: a request exactly one period old has left the window
        assert _throttle(settings, "2/min").allow_request(_request(alice), None)


@redis_only
def test_concurrent_requests_never_pass_more_than_the_rate(settings: Any, alice: AbstractUser) -> None:
    throttles = [_throttle(settings, "5/min") for _ in range(12)]
    allowed: list[bool] = []
    barrier = threading.Barrier(len(throttles))

    def one(throttle: CommandRateThrottle) -> None:
        barrier.wait()
        allowed.append(throttle.allow_request(_request(alice), None))

    threads = [threading.Thread(target=one, args=(t,)) for t in throttles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert allowed.count(True) == 5


@redis_only
def test_a_cache_that_does_not_answer_lets_the_request_through(settings: Any, alice: AbstractUser) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    throttle = _throttle(settings, "1/min")
    with mock.patch.object(CommandRateThrottle, "_run", side_effect=RedisConnectionError("down")):
        assert throttle.allow_request(_request(alice), None) is True


# --- the health check ---------------------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend's health check")
@pytest.mark.django_db(transaction=True)
def test_the_health_check_sends_nothing_on_a_quiet_connection_and_replaces_a_terminated_one() -> None:
    import psycopg

    from django.db import connections

    db = connections["default"]
    db.ensure_connection()
    db.health_check_enabled, db.health_check_done = True, False
    with mock.patch.object(db, "is_usable", wraps=db.is_usable) as full_check:
        db.close_if_health_check_failed()
        assert full_check.call_count == 0 and db.connection is not None

        pid = db.connection.info.backend_pid
        params = db.get_connection_params()
        conninfo = {k: params[k] for k in ("dbname", "user", "password", "host", "port") if params.get(k)}
        with psycopg.connect(**conninfo, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            admin.execute("SELECT pg_sleep(0.2)")
        db.health_check_done = False
        db.close_if_health_check_failed()
        assert full_check.call_count == 1 and db.connection is None

    with db.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


# --- content negotiation ------------------------------------------------------------------------
@pytest.mark.parametrize("renderers", [[JSONRenderer], [JSONRenderer, BrowsableAPIRenderer],
                                       [BrowsableAPIRenderer, JSONRenderer]])
@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html", "application/json; indent=4",
                                    "text/html;q=0.9, application/json", "image/png", "application/*"])
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api"])
def test_the_negotiation_shortcut_answers_as_drf(renderers: list[type], accept: str | None, query: str) -> None:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/{query}", **headers))
    instances = [r() for r in renderers]

    def answer(negotiation: Any) -> Any:
        try:
            renderer, media_type = negotiation.select_renderer(request, instances)
        except NotAcceptable:
            return "406"
        except Http404:  # ?format= that no renderer has
            return "404"
        return type(renderer), media_type

    assert answer(ContentNegotiation()) == answer(DefaultContentNegotiation())


# --- serializer fields --------------------------------------------------------------------------
def test_each_serializer_binds_its_own_copies_of_flat_fields() -> None:
    first = ExecuteTradeInputSerializer(data={"pair": "BTC/USD", "side": "buy", "amount": "1", "price": "2"})
    second = ExecuteTradeInputSerializer(data={"pair": "ETH/USD", "side": "x", "amount": "1", "price": "2"})

    assert first.is_valid() and not second.is_valid()
    assert first.fields["pair"] is not second.fields["pair"]
    assert first.fields["pair"].parent is first and second.fields["pair"].parent is second
    assert getattr(ExecuteTradeInputSerializer._declared_fields["pair"], "parent", None) is None  # never bound
    assert list(second.errors) == ["side"]


def test_serializers_with_nested_fields_get_drfs_copies() -> None:
    assert _leaf_fields(StrategyRulesInputSerializer) is None
    assert _leaf_fields(ExecuteTradeInputSerializer) is not None


# --- messages -----------------------------------------------------------------------------------
def test_the_messages_storage_is_made_only_when_used() -> None:
    from django.contrib import messages
    from django.http import HttpResponse

    middleware = LazyMessageMiddleware(lambda request: HttpResponse())
    quiet = RequestFactory().get("/")
    with mock.patch("cqrs_core.middleware.default_storage", wraps=lambda r: None) as made:
        response = middleware(quiet)
    assert made.call_count == 0 and "messages" not in response.cookies

    def view(request: Any) -> HttpResponse:
        messages.info(request, "hello")
        return HttpResponse()

    noisy = RequestFactory().get("/")
    noisy.session = {}  # type: ignore[attr-defined]
    response = LazyMessageMiddleware(view)(noisy)
    assert "messages" in response.cookies
