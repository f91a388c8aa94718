"""Domain errors: each carries a stable machine-readable ``code``, an HTTP status and ``retryable``.

Domain modules raise these; one DRF exception handler turns them into responses.
"""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A command or query was refused for a reason the caller can act on."""

    code = "domain_error"
    http_status = 400
    retryable = False
    title = "The request was refused"

    def __init__(self, detail: str | None = None, **context: Any) -> None:
        self.context = context
        self.detail = detail or (self.__doc__ or self.title).strip().splitlines()[0]
        super().__init__(self.detail)

    def as_dict(self) -> dict[str, Any]:
        """The error as plain data (the body of a problem response without HTTP bits)."""
        return {"code": self.code, "detail": self.detail, "retryable": self.retryable, **self.context}


class ValidationFailed(DomainError):
    """The command is not valid."""

    code, http_status, title = "validation_failed", 400, "Invalid request"


class NotFound(DomainError):
    """The thing does not exist, or is not yours."""

    code, http_status, title = "not_found", 404, "Not found"


class Forbidden(DomainError):
    """You may not do this."""

    code, http_status, title = "forbidden", 403, "Forbidden"


class Conflict(DomainError):
    """The request conflicts with the current state."""

    code, http_status, title = "conflict", 409, "Conflict"


class ConcurrencyConflict(Conflict):
    """Another command changed this stream first; retrying re-reads the new state."""

    code, retryable, title = "version_conflict", True, "Concurrent modification"


class WrongExpectedVersion(Conflict):
    """The stream is not at the version the client expected."""

    code, http_status, title = "precondition_failed", 412, "Precondition failed"


class IdempotencyKeyReused(DomainError):
    """This idempotency key was already used with a different request."""

    code, http_status, title = "idempotency_key_reused", 422, "Idempotency key reused"


class CommandInProgress(Conflict):
    """The same command is still being processed; retry shortly."""

    code, retryable, title = "command_in_progress", True, "Command in progress"


class ServiceUnavailable(DomainError):
    """A backing service is unavailable; retry shortly."""

    code, http_status, retryable, title = "service_unavailable", 503, True, "Service unavailable"


class AppendOnlyViolation(Exception):
    """Stored events are immutable; updating or deleting them is a programming error."""
