"""Celery tasks of the core, each one call deep."""
from __future__ import annotations

from uuid import UUID

from celery import shared_task

from .commands import Actor, command_from_data


@shared_task(name="cqrs_core.execute_command", acks_late=True, reject_on_worker_lost=True)
def execute_command(command_type: str, data: dict, user_id: int | None, is_staff: bool, command_id: str,
                    correlation_id: str) -> None:
    """Run a queued command; its command id makes a redelivered task a replay, not a repeat."""
    from .bus import command_bus

    command_bus.dispatch(
        command_from_data(command_type, data), actor=Actor(user_id=user_id, is_staff=is_staff),
        command_id=UUID(command_id), correlation_id=UUID(correlation_id),
    )


@shared_task(name="cqrs_core.run_projection", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_projection_task(name: str) -> int:
    """Bring one projection up to date; duplicates are harmless (one runner holds the lock)."""
    from .projections import SLICE_SECONDS, run_projection
    from .wakeups import started, wake_again

    eager = run_projection_task.app.conf.task_always_eager  # inline: no queue to go back to
    if not eager:
        started(name)  # before the first read: a wake-up published from now on is needed
    report = run_projection(name, slice_seconds=None if eager else SLICE_SECONDS)
    if report.yielded:
        wake_again(name)
    return report.applied


@shared_task(name="cqrs_core.sweep_projections", ignore_result=True)
def sweep_projections() -> list[str]:
    """Celery beat: wake every async projection that is behind, whatever wake-ups were lost."""
    from .projections import sweep

    return sweep()


@shared_task(name="cqrs_core.refresh_query", ignore_result=True)
def refresh_query(query_type: str, data: dict, user_id: int | None, is_staff: bool) -> None:
    """Recompute a cached query answer served stale-while-revalidate, as the actor who asked."""
    from .queries import query_bus, query_from_data

    query_bus.refresh(query_from_data(query_type, data), actor=Actor(user_id=user_id, is_staff=is_staff))


@shared_task(name="cqrs_core.saga_step", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def saga_step(saga_id: str) -> None:
    """Move a saga by one step and queue the next; a redelivered task finds the lease or the step done."""
    from .sagas.engine import advance, run_saga, schedule

    if saga_step.app.conf.task_always_eager:
        run_saga(UUID(saga_id))  # inline: a loop in the driver, not a recursion through apply_async
        return
    tick = advance(UUID(saga_id))
    if tick.more:
        schedule(UUID(saga_id), countdown=tick.delay, options=tick.options)


@shared_task(name="cqrs_core.sweep_sagas", ignore_result=True)
def sweep_sagas() -> list[str]:
    """Celery beat: re-drive sagas whose step is overdue or whose worker or message was lost."""
    from .sagas.engine import sweep_sagas as sweep

    return [str(saga_id) for saga_id in sweep()]


@shared_task(name="cqrs_core.rebuild_projection", acks_late=False, ignore_result=True)
def rebuild_projection_task(name: str) -> int:
    """Rebuild one projection from position 0 (the admin's background rebuild).

    Acknowledged on receipt: a worker lost mid-rebuild leaves the projection ``rebuilding`` with a
    stale heartbeat, which the admin shows and lets an operator restart, instead of a redelivery
    that a still-fresh heartbeat would refuse.
    """
    from .projections import RebuildAlreadyRunning, rebuild

    try:
        return rebuild(name).events
    except RebuildAlreadyRunning:
        return 0  # another click or worker got there first: that rebuild is the one that counts


@shared_task(name="cqrs_core.reconcile", ignore_result=True)
def reconcile() -> list[str]:
    """Celery beat: run the reconciliation checks that are due; returns the names that failed."""
    from .ops_models import prune
    from .reconciliation import run_checks

    failed = [run.check_name for run in run_checks(due_only=True) if not run.ok]
    prune()
    return failed
