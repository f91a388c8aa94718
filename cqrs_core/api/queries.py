"""Shared plumbing of query endpoints: ``min_position`` in, freshness out.

A view builds its ``Query`` and returns ``query_response(request, query)``. The body is
``{"data": ..., "position": N, "stale": bool}``; ``X-Read-Position: N`` always, and a stale
answer (the read model did not reach ``min_position`` within the wait) adds ``X-Stale: true``
and ``Retry-After: 1``. Stale answers are ``200``, not ``202``: the client always gets data it
can show, and the flag and position tell it whether to poll again for its own write.
"""
from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotAuthenticated, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from cqrs_core.commands import Actor
from cqrs_core.queries import Query, QueryResult, query_bus
from cqrs_core.serialization import to_json

MIN_POSITION_PARAM = "min_position"
#: Seconds after which a client may ask again for a position it did not get.
STALE_RETRY_AFTER = 1


def min_position_from(request: Request) -> int | None:
    """The ``min_position`` query parameter as a non-negative int; None when absent; 400 otherwise."""
    raw = request.query_params.get(MIN_POSITION_PARAM)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:  # isdigit: no sign, no spaces; 18 digits fit a bigint
        raise ValidationError({MIN_POSITION_PARAM: ["Must be a non-negative integer."]}, code="invalid")
    return int(raw)


def query_actor(request: Request) -> Actor:
    """The query bus actor of the signed-in user; anonymous users are refused, never the system."""
    user = request.user
    if user is None or not user.is_authenticated:
        raise NotAuthenticated()
    return Actor(user_id=user.pk, is_staff=bool(user.is_staff))


def render_result(result: QueryResult) -> Response:
    """The response of an answered query: body, ``X-Read-Position`` and, when stale, the retry hint."""
    body: dict[str, Any] = {"data": to_json(result.data), "position": result.position, "stale": result.stale}
    headers = {"X-Read-Position": str(result.position)}
    if result.stale:
        headers.update({"X-Stale": "true", "Retry-After": str(STALE_RETRY_AFTER)})
    return Response(body, headers=headers)


def query_response(request: Request, query: Query, *, timeout: float | None = None) -> Response:
    """Ask the query bus as the request's user, honouring ``min_position``; domain errors propagate."""
    min_position = min_position_from(request)
    return render_result(query_bus.ask(query, actor=query_actor(request), min_position=min_position,
                                       timeout=timeout))


def refuse_blank_parameters(request: Request) -> None:
    """A query parameter given with no value (``?window=``) is a 400, not the parameter's default.

    DRF serializers treat a blank form value of an optional field as absent (HTML form semantics);
    for a query API that silently answers something the client did not ask for.
    """
    blank = sorted({key for key, values in request.query_params.lists() if any(v == "" for v in values)})
    if blank:
        raise ValidationError({key: ["May not be blank: give a value or leave the parameter out."] for key in blank},
                              code="blank")


class QueryViewMixin:
    """For DRF views: ``return self.answer(request, GetThing(...))``; blank query parameters are a 400."""

    query_timeout: float | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if request.method in ("GET", "HEAD"):
            refuse_blank_parameters(request)

    def answer(self, request: Request, query: Query) -> Response:
        return query_response(request, query, timeout=self.query_timeout)
