"""OpenAPI pieces every context reuses: the ``Problem`` component and the command endpoint schema."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from .errors import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX

# status -> (code, title, detail, retryable) of the example shown for it.
_EXAMPLES: dict[int, tuple[str, str, str, bool]] = {
    400: ("validation_failed", "Invalid request", "The request has invalid fields.", False),
    401: ("not_authenticated", "Authentication required", "Authentication credentials were not provided.", False),
    403: ("forbidden", "Forbidden", "You do not have permission to perform this action.", False),
    404: ("not_found", "Not found", "The thing does not exist, or is not yours.", False),
    409: ("conflict", "Conflict", "The request conflicts with the current state.", False),
    412: ("precondition_failed", "Precondition failed", "stream account-1 is at version 4, not 3", False),
    413: ("payload_too_large", "Payload too large", "The request body is larger than 65536 bytes.", False),
    415: ("unsupported_media_type", "Unsupported media type", 'Unsupported media type "text/plain" in request.', False),
    422: ("idempotency_key_reused", "Idempotency key reused",
          "This idempotency key was already used with a different request.", False),
    429: ("throttled", "Too many requests", "Request was throttled. Expected available in 12 seconds.", True),
    500: ("internal_error", "Internal server error", "An unexpected error occurred; retry later.", True),
    503: ("service_unavailable", "Service unavailable", "The database is unavailable; retry shortly.", True),
}
#: The errors any command endpoint can answer, besides its own.
COMMAND_ERRORS = (400, 401, 412, 415, 422, 429)


class ProblemSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """An error: ``application/problem+json`` with a stable ``code`` and a ``retryable`` flag."""

    type = serializers.CharField(help_text=f"A URI naming the problem type: {PROBLEM_TYPE_PREFIX}<code>.")
    code = serializers.CharField(help_text="Stable, machine-readable snake_case code.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    retryable = serializers.BooleanField(help_text="Whether the same request may succeed if retried later.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="Validation only: messages per field (nested fields as 'parent.child').",
    )


class CommandResultSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """What every command answers; contexts subclass it to add their result fields."""

    command_id = serializers.UUIDField()
    position = serializers.IntegerField(allow_null=True, help_text="Global position of the command's last "
                                                                   "event; pass as min_position to read your write.")
    stream_version = serializers.IntegerField(help_text="The stream's version after the command; its ETag.")


def problem_responses(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    """``extend_schema(responses=...)`` entries for these error statuses, each with an example."""
    return {(code, PROBLEM_CONTENT_TYPE): _problem_response(code) for code in statuses}


def _problem_response(status: int) -> OpenApiResponse:
    code, title, detail, retryable = _EXAMPLES.get(status, ("domain_error", "The request was refused", "", False))
    example: dict[str, Any] = {"type": PROBLEM_TYPE_PREFIX + code, "code": code, "title": title,
                               "status": status, "detail": detail, "retryable": retryable}
    if status == 400:
        example["errors"] = {"amount": ["A valid number is required."]}
    return OpenApiResponse(ProblemSerializer, description=title,
                           examples=[OpenApiExample(code, value=example, status_codes=[str(status)])])


def command_schema(
    *, request: Any, response: Any = CommandResultSerializer, status: int = 200, errors: Sequence[int] = (),
    **kwargs: Any,
) -> Callable[[Any], Any]:
    """``extend_schema`` for a command endpoint: its idempotency/precondition headers and all its errors."""
    statuses = sorted(set(COMMAND_ERRORS) | set(errors))
    return extend_schema(
        request=request, responses={status: response, **problem_responses(*statuses)},
        parameters=[*_command_headers(status), *kwargs.pop("parameters", [])], **kwargs,
    )


def _command_headers(status: int) -> list[OpenApiParameter]:
    header = OpenApiParameter.HEADER
    return [
        OpenApiParameter("Idempotency-Key", str, header, description="Retry-safe key (1-255 characters); the same "
                         "key and body answer the first result, another body answers 422."),
        OpenApiParameter("If-Match", str, header, description='Expected stream version, e.g. "3"; 412 if it moved.'),
        OpenApiParameter("X-Event-Position", OpenApiTypes.INT, header, response=[status],
                         description="Global position of the command's last event."),
        OpenApiParameter("ETag", str, header, response=[status], description="The stream version after the command."),
        OpenApiParameter("Idempotent-Replayed", str, header, response=[status],
                         description='"true" when this is the stored answer to an earlier request.'),
    ]


#: Errors any operation may answer whatever it does, added to every operation by the hook below.
#: 400 when it takes parameters or a body; 401 unless public; 404 when its path has parameters;
#: 413/415 when it takes a body; 429 (throttles); 503 (database unreachable, retryable).
def add_standard_problems(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular ``POSTPROCESSING_HOOKS`` entry: document the errors every operation can give."""
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    if "Problem" not in result.get("components", {}).get("schemas", {}):
        return result  # no operation documents errors at all (a schema of test views only)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status in _standard_statuses(path, method, operation):
                code, title, detail, retryable = _EXAMPLES[status]
                example = {"type": PROBLEM_TYPE_PREFIX + code, "code": code, "title": title, "status": status,
                           "detail": detail, "retryable": retryable}
                operation["responses"].setdefault(str(status), {
                    "description": title,
                    "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_ref, "examples": {code: {"value": example}}}},
                })
    return result


def _standard_statuses(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    statuses = [429, 503]
    if operation.get("parameters") or "requestBody" in operation:
        statuses.append(400)
    if {} not in operation.get("security", [{}]) or not operation.get("security"):
        statuses.append(401)
    if "{" in path:
        statuses.append(404)
    if "requestBody" in operation:
        statuses += [413, 415]
    return statuses

