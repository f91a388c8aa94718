"""Shared plumbing of command endpoints, so each context's view only parses and builds a command.

* ``Idempotency-Key`` -> a command id derived from the user and the key, so the bus's
  idempotency answers a retry with the stored result (and refuses the key for another request).
* ``If-Match`` (or ``expected_version`` in the body) -> ``expected_version`` for the bus (412).
* The response carries ``command_id``, ``position`` and ``stream_version`` in the body and
  ``X-Event-Position`` / ``ETag`` headers; a replay adds ``Idempotent-Replayed: true``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar
from uuid import UUID, uuid4, uuid5

from rest_framework import status
from rest_framework.exceptions import NotAuthenticated, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cqrs_core.bus import CommandResult, command_bus
from cqrs_core.commands import Actor, Command
from cqrs_core.serialization import to_json

from .serializers import CommandInputSerializer
from .throttling import CommandRateThrottle

#: Namespace of command ids derived from idempotency keys; changing it forgets every stored key.
IDEMPOTENCY_NAMESPACE = UUID("aa4261e2-44e5-4cd3-a32f-65bfe2244027")
MAX_IDEMPOTENCY_KEY_LENGTH = 255
IDEMPOTENCY_HEADER = "Idempotency-Key"
_IF_MATCH = re.compile(r'(?:W/)?"?(\d{1,18})"?')


def actor_for(user: Any) -> Actor:
    """The bus actor of a signed-in user; anonymous users never become the system actor."""
    if user is None or not user.is_authenticated:
        raise NotAuthenticated()
    return Actor(user_id=user.pk, is_staff=bool(user.is_staff))


def command_id_for(request: Request) -> UUID | None:
    """``uuid5(namespace, "<user pk>:<key>")`` from the ``Idempotency-Key`` header, or None without one."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValidationError({IDEMPOTENCY_HEADER: [
            f"Must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters."]}, code="invalid_idempotency_key")
    return uuid5(IDEMPOTENCY_NAMESPACE, f"{request.user.pk}:{key}")


def if_match_version(request: Request) -> int | None:
    """The stream version in ``If-Match`` (``"3"``, ``3`` or ``W/"3"``); None when absent or ``*``."""
    value = request.headers.get("If-Match")
    if value is None or value.strip() == "*":
        return None
    match = _IF_MATCH.fullmatch(value.strip())
    if match is None:
        raise ValidationError({"If-Match": ["Must be one stream version, such as \"3\"."]}, code="invalid_if_match")
    return int(match.group(1))


def etag(stream_version: int) -> str:
    """The ``ETag`` of a stream at a version, as ``If-Match`` reads it back."""
    return f'"{stream_version}"'


def command_response(result: CommandResult, *, status_code: int = status.HTTP_200_OK,
                     body: Mapping[str, Any] | None = None, location: str | None = None) -> Response:
    """The response of a handled command: result data, extra ``body``, then the command's bookkeeping."""
    data = {**to_json(dict(result.data)), **to_json(dict(body or {})), "command_id": str(result.command_id),
            "position": result.position, "stream_version": result.stream_version}
    headers = {"ETag": etag(result.stream_version)}
    if result.position is not None:
        headers["X-Event-Position"] = str(result.position)
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    if location is not None:
        headers["Location"] = location
    return Response(data, status=status_code, headers=headers)


class CommandApiView(APIView):
    """Base of a command endpoint: ``post`` validates ``InputSerializer`` and calls :meth:`execute`."""

    InputSerializer: ClassVar[type[CommandInputSerializer]] = CommandInputSerializer
    success_status: ClassVar[int] = status.HTTP_200_OK
    throttle_classes = [CommandRateThrottle]

    _body_expected_version: int | None = None

    def validated_input(self, request: Request) -> dict[str, Any]:
        """The validated body without ``expected_version`` (kept for :meth:`execute`)."""
        serializer = self.InputSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        self._body_expected_version = data.pop("expected_version", None)
        return data

    def get_serializer_context(self) -> dict[str, Any]:
        return {"request": self.request, "view": self}

    def new_id(self, request: Request, purpose: str) -> UUID:
        """An id for a thing this command creates: stable across retries with the same idempotency key."""
        command_id = command_id_for(request)
        return uuid4() if command_id is None else uuid5(command_id, purpose)

    def expected_version(self, request: Request) -> int | None:
        """``If-Match`` or the body's ``expected_version``; both given must agree."""
        header, body = if_match_version(request), self._body_expected_version
        if header is not None and body is not None and header != body:
            raise ValidationError({"expected_version": ["Does not match the If-Match header."]})
        return header if header is not None else body

    def execute(self, request: Request, command: Command, *, body: Mapping[str, Any] | None = None,
                location: str | None = None) -> Response:
        """Dispatch a command as the request's user and render its result (errors raise)."""
        result = command_bus.dispatch(
            command, actor=actor_for(request.user), command_id=command_id_for(request),
            expected_version=self.expected_version(request),
        )
        return command_response(result, status_code=self.success_status, body=body, location=location)
