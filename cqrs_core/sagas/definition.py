"""How sagas are declared: steps with timeouts, retry policies, resources and compensations."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar
from uuid import UUID

from ..commands import ResourceRequirements
from ..errors import CommandInProgress, ConcurrencyConflict, ServiceUnavailable
from ..events import Event


class TransientError(Exception):
    """A step failed for a reason that may pass (a timeout, an unavailable service): retry it."""


class StepTimedOut(TransientError):
    """The step ran past its deadline (or its worker died while running it)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often a step is tried again, after how long, and for which errors."""

    max_retries: int = 3
    backoff: float = 0.5
    retryable: tuple[type[BaseException], ...] = (TransientError, ConcurrencyConflict, CommandInProgress,
                                                  ServiceUnavailable)

    def delay(self, attempt: int) -> float:
        """Seconds before try ``attempt + 1``: exponential from ``backoff``."""
        return self.backoff * 2 ** max(attempt - 1, 0)

    def may_retry(self, error: BaseException, attempt: int) -> bool:
        return isinstance(error, self.retryable) and attempt <= self.max_retries


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """What a step returns: its result, events for the saga's stream, and whether to go on."""

    result: Mapping[str, Any] = field(default_factory=dict)
    events: Sequence[Event] = ()
    continue_flow: bool = True
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class StepContext:
    """What a step may know besides data and results: ids that stay the same on every re-run."""

    saga_id: UUID
    step: str
    attempt: int
    correlation_id: UUID | None
    compensating: bool = False

    @property
    def idempotency_key(self) -> UUID:
        """The same for every attempt of this step (or of its compensation) of this saga."""
        return uuid.uuid5(self.saga_id, ("compensate:" if self.compensating else "") + self.step)

    def command_id(self, suffix: str = "") -> UUID:
        """A command id for the step's n-th command: a re-run replays it instead of acting twice."""
        return self.idempotency_key if not suffix else uuid.uuid5(self.idempotency_key, suffix)


Run = Callable[[Mapping[str, Any], Mapping[str, Any], StepContext], "StepResult | Mapping[str, Any] | None"]
Compensate = Callable[[Mapping[str, Any], Mapping[str, Any], StepContext], None]


@dataclass(frozen=True)
class Step:
    """One step: its action, its compensation beside it, how long it may take and how it retries."""

    name: str
    _: KW_ONLY
    run: Run
    compensate: Compensate | None = None
    timeout: float = 30.0
    retry: RetryPolicy = RetryPolicy()
    compensate_retry: RetryPolicy | None = None
    resources: ResourceRequirements | None = None

    @property
    def compensation_policy(self) -> RetryPolicy:
        return self.compensate_retry or self.retry


class SagaDefinition:
    """Base of saga declarations: ``class Transfer(SagaDefinition, name="bank.Transfer")``."""

    saga_type: ClassVar[str] = ""
    steps: ClassVar[Sequence[Step]] = ()
    reacts_to: ClassVar[Sequence[type[Event]]] = ()

    def __init_subclass__(cls, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            cls.saga_type = name

    @classmethod
    def start_from(cls, event: Event) -> Mapping[str, Any] | None:
        """The saga's data when ``event`` should start one, else None."""
        return None

    @classmethod
    def step_index(cls, name: str) -> int:
        return [s.name for s in cls.steps].index(name)


_SAGAS: dict[str, type[SagaDefinition]] = {}
#: ``sagas_reacting_to`` per event type, worked out once (every committed command asks): emptied on registration.
_REACTING: dict[str, list[type[SagaDefinition]]] = {}


def register_saga(definition: type[SagaDefinition]) -> type[SagaDefinition]:
    """Register a definition under its ``saga_type``; usable as a class decorator."""
    if not definition.saga_type:
        raise ValueError(f"{definition.__qualname__} needs name=")
    names = [s.name for s in definition.steps]
    if len(set(names)) != len(names):
        raise ValueError(f"saga {definition.saga_type} has duplicate step names")
    taken = _SAGAS.get(definition.saga_type)
    if taken is not None and taken.__qualname__ != definition.__qualname__:
        raise ValueError(f"saga {definition.saga_type!r} is already registered")
    _SAGAS[definition.saga_type] = definition
    _REACTING.clear()
    return definition


def saga_definition(saga_type: str) -> type[SagaDefinition]:
    try:
        return _SAGAS[saga_type]
    except KeyError:
        raise LookupError(f"no saga registered as {saga_type!r}") from None


def sagas_reacting_to(event_type: str) -> list[type[SagaDefinition]]:
    reacting = _REACTING.get(event_type)
    if reacting is None:
        reacting = _REACTING[event_type] = [d for _, d in sorted(_SAGAS.items())
                                            if any(e.event_type == event_type for e in d.reacts_to)]
    return reacting
