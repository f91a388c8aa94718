"""Projections and dead letters: status, lag and rebuild progress, with the operator's actions.

A rebuild started here runs in the background so the request returns at once: as the Celery task
``cqrs_core.rebuild_projection`` on a worker, or, when Celery is eager (the embedded mode, where
the task would run inside this request), as the same task body in a daemon thread of this
process. A thread dies with its process; the projection then shows ``rebuilding (stalled)`` once
its heartbeat is older than ``REBUILD_HEARTBEAT_TIMEOUT`` and may be rebuilt again.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from django.contrib import admin, messages
from django.db import connections, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from .. import projections as proj
from ..models import DeadLetter, ProjectionState
from .base import StaffActionsAdmin
from .streams import event_link, stream_link

logger = logging.getLogger("ledgerline.admin")

_threads: list[threading.Thread] = []


# --- background rebuilds --------------------------------------------------------------------
def start_rebuild(name: str) -> str:
    """Start a rebuild of ``name`` after this transaction commits; returns where it runs."""
    from ..tasks import rebuild_projection_task

    if rebuild_projection_task.app.conf.task_always_eager:
        thread = threading.Thread(target=_rebuild_in_thread, args=(name,), name=f"rebuild {name}", daemon=True)
        _threads.append(thread)
        transaction.on_commit(thread.start)
        return "a background thread"
    transaction.on_commit(lambda: rebuild_projection_task.apply_async(args=[name]))
    return "a Celery worker"


def _rebuild_in_thread(name: str) -> None:
    from ..tasks import rebuild_projection_task

    try:
        rebuild_projection_task(name)
    except Exception:  # nobody awaits the thread: the log and the state row are the report
        logger.exception("background rebuild of %s failed", name)
    finally:
        connections.close_all()  # this thread's own connections


def wait_for_background_rebuilds(timeout: float = 60.0) -> bool:
    """Join the rebuild threads started by this process (tests, shutdown); True when all ended."""
    for thread in list(_threads):
        thread.join(timeout)
        if not thread.is_alive():
            _threads.remove(thread)
    return not _threads


def rebuild_alive(state: ProjectionState, now: dt.datetime | None = None) -> bool:
    """A rebuild is running: status ``rebuilding`` with a heartbeat younger than the timeout."""
    beat = state.rebuild_heartbeat_at
    now = now or timezone.now()
    return (state.status == proj.Status.REBUILDING and beat is not None
            and (now - beat).total_seconds() < proj.REBUILD_HEARTBEAT_TIMEOUT)


def rebuild_progress(state: ProjectionState, now: dt.datetime | None = None) -> proj.Progress | None:
    """Progress of a running rebuild from its state row: checkpoint of target, rate since it started."""
    if state.status != proj.Status.REBUILDING or state.rebuild_target is None or state.rebuild_started_at is None:
        return None
    elapsed = ((now or timezone.now()) - state.rebuild_started_at).total_seconds()
    return proj.Progress(state.name, state.position, state.rebuild_target, 0, elapsed)


def ensure_states_read_first() -> None:
    """Create missing state rows (``projections.ensure_states`` writes only when one is missing)."""
    proj.ensure_states()


def read_lags(states: list[ProjectionState] | None = None) -> dict[str, proj.Lag]:
    """``projections.lag()`` by name, for the given state rows when the page already has them."""
    return {item.name: item for item in proj.lag(states=states)}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# --- the projections page -------------------------------------------------------------------
@admin.register(ProjectionState)
class ProjectionStateAdmin(StaffActionsAdmin):
    list_display = ("name", "status_display", "checkpoint", "head", "lag_events", "lag_seconds", "rebuild",
                    "error", "dead_letters")
    actions = ("pause_projections", "resume_projections", "rebuild_projections", "cancel_rebuilds")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProjectionState]:
        ensure_states_read_first()
        return super().get_queryset(request)

    def _lag(self, obj: ProjectionState) -> proj.Lag | None:
        # Cached on the row object: every column of one row shares one computation.
        if not hasattr(obj, "_lag"):
            obj._lag = read_lags([obj]).get(obj.name)
        return obj._lag

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: ProjectionState) -> str:
        shown = obj.status
        if obj.status == proj.Status.REBUILDING and not rebuild_alive(obj):
            shown += " (stalled)"
        if obj.rebuild_cancel_requested:
            shown += " (cancel requested)"
        return shown

    @admin.display(description="checkpoint", ordering="position")
    def checkpoint(self, obj: ProjectionState) -> int:
        return obj.position

    @admin.display(description="head")
    def head(self, obj: ProjectionState) -> int | str:
        lag = self._lag(obj)
        return lag.head if lag else "-"

    @admin.display(description="lag (events)")
    def lag_events(self, obj: ProjectionState) -> int | str:
        lag = self._lag(obj)
        return lag.events_behind if lag else "-"

    @admin.display(description="lag (s)")
    def lag_seconds(self, obj: ProjectionState) -> str:
        lag = self._lag(obj)
        return f"{lag.seconds_behind:.1f}" if lag else "-"

    @admin.display(description="rebuild")
    def rebuild(self, obj: ProjectionState) -> str:
        progress = rebuild_progress(obj)
        if progress is None:
            return "-"
        return format_html(
            '<progress value="{}" max="100"></progress> <span class="rebuild-percent">{}%</span> · {} events/s · ETA {}',
            f"{progress.percent:.0f}", f"{progress.percent:.1f}", f"{progress.rate:,.0f}",
            _duration(progress.eta_seconds))

    @admin.display(description="last error")
    def error(self, obj: ProjectionState) -> str:
        return obj.last_error[:200]

    @admin.display(description="dead letters")
    def dead_letters(self, obj: ProjectionState) -> str:
        lag = self._lag(obj)
        pending = lag.pending_dead_letters if lag else 0
        url = reverse("admin:cqrs_core_deadletter_changelist") + "?" + urlencode({"projection__exact": obj.name})
        return format_html('<a href="{}">{} pending</a>', url, pending)

    @admin.action(description="Pause the selected projections")
    def pause_projections(self, request: HttpRequest, queryset: QuerySet[ProjectionState]) -> None:
        for state in queryset:
            proj.pause(state.name)
            self.log_change(request, state, "paused")
        self.message_user(request, f"Paused {queryset.count()} projection(s).")

    @admin.action(description="Resume the selected projections")
    def resume_projections(self, request: HttpRequest, queryset: QuerySet[ProjectionState]) -> None:
        for state in queryset:
            proj.resume(state.name)
            self.log_change(request, state, "resumed")
        self.message_user(request, f"Resumed {queryset.count()} projection(s).")

    @admin.action(description="Rebuild the selected projections from position 0 (in the background)")
    def rebuild_projections(self, request: HttpRequest, queryset: QuerySet[ProjectionState]) -> None:
        for state in queryset:
            if rebuild_alive(state):
                progress = rebuild_progress(state)
                done = f" ({progress.percent:.0f}% done)" if progress else ""
                self.message_user(request, f"{state.name} is already being rebuilt{done}: not started again.",
                                  messages.ERROR)
                continue
            # Noted first: on SQLite a write after the start would wait for the rebuild's write lock.
            self.log_change(request, state, "rebuild started")
            where = start_rebuild(state.name)
            self.message_user(request, f"Rebuild of {state.name} started in {where}; this page shows its progress.")

    @admin.action(description="Cancel the running rebuilds of the selected projections")
    def cancel_rebuilds(self, request: HttpRequest, queryset: QuerySet[ProjectionState]) -> None:
        running = [state for state in queryset if state.status == proj.Status.REBUILDING]
        for state in running:
            proj.request_cancel(state.name)
            self.log_change(request, state, "rebuild cancel requested")
        if running:
            names = ", ".join(state.name for state in running)
            self.message_user(request, f"Asked {names} to stop after the current batch (ends paused).")
        else:
            self.message_user(request, "None of the selected projections is rebuilding.", messages.WARNING)


# --- dead letters ---------------------------------------------------------------------------
@admin.register(DeadLetter)
class DeadLetterAdmin(StaffActionsAdmin):
    list_display = ("projection", "position", "event_type", "status", "attempts", "error", "resolved_by", "created_at")
    list_filter = ("status", "projection")
    search_fields = ("=stream_id", "error")
    readonly_fields = ("projection", "event", "stream", "event_type", "error", "traceback_pre", "attempts",
                       "status", "resolved_by", "resolved_at", "created_at")
    exclude = ("traceback", "position", "stream_id")
    actions = ("retry_letters", "skip_letters")

    @admin.display(description="event")
    def event(self, obj: DeadLetter) -> str:
        return event_link(obj.position)

    @admin.display(description="stream")
    def stream(self, obj: DeadLetter) -> str:
        return stream_link(obj.stream_id, obj.stream_id)

    @admin.display(description="traceback")
    def traceback_pre(self, obj: DeadLetter) -> str:
        return format_html("<pre>{}</pre>", obj.traceback)

    @admin.action(description="Retry the selected dead letters")
    def retry_letters(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        ok = sum(proj.retry_dead_letter(letter.pk, by=request.user.get_username()) for letter in queryset)
        self.message_user(request, f"{ok} of {queryset.count()} dead letter(s) now apply.")

    @admin.action(description="Skip the selected dead letters")
    def skip_letters(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        for letter in queryset:
            proj.skip_dead_letter(letter.pk, by=request.user.get_username())
        self.message_user(request, f"Skipped {queryset.count()} dead letter(s).")
