"""The events of the saga engine, recorded in each saga's own stream ``saga-<id>``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from ..events import Event


@dataclass(frozen=True, kw_only=True)
class SagaStarted(Event, name="saga.SagaStarted"):
    saga_id: UUID
    saga_type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class StepCompleted(Event, name="saga.StepCompleted"):
    saga_id: UUID
    step: str
    attempt: int
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class StepFailed(Event, name="saga.StepFailed"):
    saga_id: UUID
    step: str
    attempt: int
    error: str
    will_retry: bool


@dataclass(frozen=True, kw_only=True)
class CompensationCompleted(Event, name="saga.CompensationCompleted"):
    saga_id: UUID
    step: str
    attempt: int


@dataclass(frozen=True, kw_only=True)
class SagaCompleted(Event, name="saga.SagaCompleted"):
    saga_id: UUID
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class SagaCompensated(Event, name="saga.SagaCompensated"):
    saga_id: UUID
    reason: str


@dataclass(frozen=True, kw_only=True)
class SagaFailed(Event, name="saga.SagaFailed"):
    saga_id: UUID
    step: str
    error: str


@dataclass(frozen=True, kw_only=True)
class SagaOperatorAction(Event, name="saga.SagaOperatorAction"):
    """An operator retried a failed saga or forced a stuck one to compensate."""

    saga_id: UUID
    action: str
    by: str
