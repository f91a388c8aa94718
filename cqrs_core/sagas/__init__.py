"""Sagas: declared sequences of steps with compensations, persisted and driven by Celery.

See ``definition`` (how to declare one), ``engine`` (how it runs) and ``models`` (its state).
"""
from __future__ import annotations

from .definition import (
    RetryPolicy, SagaDefinition, Step, StepContext, StepResult, StepTimedOut, TransientError, register_saga,
    saga_definition,
)
from .engine import (
    SagaNotFound, SagaNotInState, advance, compensate_saga, retry_saga, run_saga, saga_id_for_event, start_saga,
    start_sagas_for_events, sweep_sagas,
)

__all__ = [
    "RetryPolicy", "SagaDefinition", "SagaNotFound", "SagaNotInState", "Step", "StepContext", "StepResult",
    "StepTimedOut", "TransientError", "advance", "compensate_saga", "register_saga", "retry_saga", "run_saga",
    "saga_definition", "saga_id_for_event", "start_saga", "start_sagas_for_events", "sweep_sagas",
]
