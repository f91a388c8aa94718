"""Reconciliation: registered checks that compare what the system shows with what it should show.

Each check has a schedule (run at most this often by the Celery beat entry ``reconcile``) and an
allowed inconsistency window (how far reality may trail before it counts as a failure). A run is
recorded as a :class:`~cqrs_core.ops_models.ReconciliationRun`; a failure is logged at error
level and, when the check may repair (``repair=True`` at registration, in
``CQRS_RECONCILE_REPAIR`` or asked for by the caller), the projections it names are rebuilt.

Built-in checks: ``projection_lag``, ``projections_replay`` (read models equal a replay of the
store up to their checkpoint) and ``sagas_overdue``. Contexts register their own with
:func:`register_check` in a ``reconciliation`` module of their app, found like ``admin`` modules
(e.g. ``portfolio.reconciliation``: cash and positions against the sum of their events).

:func:`verify` replays a projection into scratch: in one transaction it locks the projection's
state row (its runner skips it meanwhile), snapshots the live rows, empties the read models,
replays every event up to the checkpoint, snapshots again and rolls everything back. The lock
makes live rows and checkpoint one consistent picture; the cost is a full replay, so
projections above ``CQRS_RECONCILE_VERIFY_MAX_EVENTS`` events are skipped by the scheduled check.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from . import projections as proj
from .models import DeadLetter, ProjectionState, StoredEvent
from .ops_models import ReconciliationRun
from .store import head_position, read_all

logger = logging.getLogger("ledgerline.reconciliation")

#: Most differing rows a report lists per model (the counts are always complete).
MAX_LISTED = 20


# --- verify: read models against a replay in scratch ----------------------------------------
@dataclass
class ModelDiff:
    """Rows of one read model: live but not in the replay, in the replay but not live, or changed."""

    model: str
    missing: list[Any] = field(default_factory=list)   # in the replay, not live
    extra: list[Any] = field(default_factory=list)     # live, not in the replay
    changed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.changed)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "missing": len(self.missing), "extra": len(self.extra),
                "changed": len(self.changed), "examples": {
                    "missing": self.missing[:MAX_LISTED], "extra": self.extra[:MAX_LISTED],
                    "changed": self.changed[:MAX_LISTED]}}


@dataclass
class Verification:
    """What :func:`verify` found for one projection."""

    name: str
    checkpoint: int
    events: int = 0
    models: list[ModelDiff] = field(default_factory=list)
    replay_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.replay_errors and all(m.count == 0 for m in self.models)

    def as_dict(self) -> dict[str, Any]:
        return {"projection": self.name, "checkpoint": self.checkpoint, "events": self.events,
                "ok": self.ok, "models": [m.as_dict() for m in self.models if m.count],
                "replay_errors": self.replay_errors[:MAX_LISTED], "seconds": round(self.seconds, 3)}


def verify(name: str) -> Verification:
    """Replay projection ``name`` up to its checkpoint into scratch and diff it with the live rows.

    Changes nothing: the replay happens in a transaction that is rolled back. Events the
    projection dead-lettered and did not resolve are left out of the replay, as live left them.
    """
    projection = proj.get_projection(name)
    started = time.monotonic()
    with transaction.atomic():
        state = _lock(name)
        # An immediate projection in step has applied every event (its commands wait on this lock).
        in_step = projection.mode == proj.IMMEDIATE and state.status == proj.Status.RUNNING
        upto = head_position() if in_step else state.position
        result = Verification(name, upto)
        live = {m: _snapshot(m) for m in projection.read_models}
        projection.reset()
        result.events, result.replay_errors = _replay(projection, upto)
        for model in projection.read_models:
            result.models.append(_diff(model, live[model], _snapshot(model)))
        transaction.set_rollback(True)
    result.seconds = time.monotonic() - started
    return result


def _lock(name: str) -> ProjectionState:
    proj.ensure_states()
    return ProjectionState.objects.select_for_update().get(name=name)


def _replay(projection: proj.Projection, upto: int) -> tuple[int, list[str]]:
    left_out = set(DeadLetter.objects.filter(projection=projection.name)
                   .exclude(status=DeadLetter.Status.RESOLVED).values_list("position", flat=True))
    count, errors, after = 0, [], 0
    token = proj._replaying.set(True)  # the core's own flag: outbound effects stay quiet in scratch
    try:
        while batch := [e for e in read_all(after, limit=1000, types=projection.event_types) if e.position <= upto]:
            for recorded in batch:
                if recorded.position in left_out:
                    continue
                count += 1
                try:
                    with transaction.atomic():
                        projection.apply(recorded.event, recorded)
                except Exception as exc:  # reported as a difference, not raised: the check goes on
                    errors.append(f"position {recorded.position}: {type(exc).__name__}: {exc}")
            after = batch[-1].position
    finally:
        proj._replaying.reset(token)
    return count, errors


def _auto_pk(model: type[models.Model]) -> bool:
    return isinstance(model._meta.pk, models.AutoField | models.BigAutoField | models.SmallAutoField)


def _snapshot(model: type[models.Model]) -> dict[Any, tuple] | Counter:
    """Rows by primary key; a model with a generated key is a multiset of its other columns."""
    fields = [f.attname for f in model._meta.concrete_fields if not (f.primary_key and _auto_pk(model))]
    rows = model.objects.order_by().values_list(*fields)
    if _auto_pk(model):
        return Counter(rows)
    pk_index = fields.index(model._meta.pk.attname)
    return {row[pk_index]: row for row in rows}


def _diff(model: type[models.Model], live: Any, replayed: Any) -> ModelDiff:
    diff = ModelDiff(model._meta.label)
    fields = [f.attname for f in model._meta.concrete_fields if not (f.primary_key and _auto_pk(model))]
    if isinstance(live, Counter):
        diff.missing = [_plain(dict(zip(fields, row))) for row in (replayed - live).elements()]
        diff.extra = [_plain(dict(zip(fields, row))) for row in (live - replayed).elements()]
        return diff
    diff.missing = [_plain(key) for key in replayed.keys() - live.keys()]
    diff.extra = [_plain(key) for key in live.keys() - replayed.keys()]
    for key in live.keys() & replayed.keys():
        if live[key] != replayed[key]:
            changes = {f: {"live": _plain(a), "replay": _plain(b)}
                       for f, a, b in zip(fields, live[key], replayed[key]) if a != b}
            diff.changed.append({"pk": _plain(key), "fields": changes})
    diff.missing.sort(key=str)
    diff.extra.sort(key=str)
    diff.changed.sort(key=lambda c: str(c["pk"]))
    return diff


def _plain(value: Any) -> Any:
    """JSON-safe: money and ids as strings, so a report never rounds a Decimal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 999.5, not 999.500000000000000000 nor 9.995E+2
    if isinstance(value, UUID | dt.datetime | dt.date):
        return str(value)
    return value


# --- checks ---------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What a check found: ok, details for the record, and the projections a repair would rebuild."""

    ok: bool
    details: dict[str, Any] = field(default_factory=dict)
    rebuild: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Check:
    """A registered check: run at most every ``every`` seconds, tolerating ``window`` seconds."""

    name: str
    run: Callable[[Check], Outcome]
    every: float
    window: float
    repair: bool = False


_CHECKS: dict[str, Check] = {}


def register_check(name: str, *, every: float, window: float = 0.0,
                   repair: bool = False) -> Callable[[Callable[[Check], Outcome]], Callable[[Check], Outcome]]:
    """Register ``fn(check) -> Outcome`` as check ``name``; contexts call this for their own checks."""

    def register(fn: Callable[[Check], Outcome]) -> Callable[[Check], Outcome]:
        _CHECKS[name] = Check(name, fn, every, window, repair)
        return fn

    return register


_discovered = False


def discover() -> None:
    """Import every installed app's ``reconciliation`` module once, so its ``register_check`` calls run."""
    global _discovered
    if not _discovered:
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("reconciliation")
        _discovered = True


def checks() -> list[Check]:
    discover()
    return [_CHECKS[name] for name in sorted(_CHECKS)]


class CheckNotFound(KeyError):
    pass


def get_check(name: str) -> Check:
    discover()
    try:
        return _CHECKS[name]
    except KeyError:
        raise CheckNotFound(name) from None


def run_checks(names: Iterable[str] | None = None, *, due_only: bool = False,
               repair: bool | None = None) -> list[ReconciliationRun]:
    """Run the named checks (default: all), record each run; ``due_only`` skips those run recently."""
    selected = [get_check(n) for n in names] if names else checks()
    if due_only:
        selected = [c for c in selected if _due(c)]
    return [run_check(check, repair=repair) for check in selected]


def _due(check: Check) -> bool:
    last = ReconciliationRun.objects.filter(check_name=check.name).values_list("started_at", flat=True).first()
    return last is None or (timezone.now() - last).total_seconds() >= check.every


def _may_repair(check: Check, repair: bool | None) -> bool:
    if repair is not None:
        return repair
    return check.repair or check.name in getattr(settings, "CQRS_RECONCILE_REPAIR", ())


def run_check(check: Check, *, repair: bool | None = None) -> ReconciliationRun:
    """Run one check, repair if allowed and needed, and record the run."""
    started = timezone.now()
    outcome = _safe_run(check)
    repaired = False
    if not outcome.ok:
        logger.error("reconciliation check %s failed: %s", check.name, outcome.details,
                     extra={"check": check.name})
        if outcome.rebuild and _may_repair(check, repair):
            repaired, outcome.details["repair"] = _repair(check, outcome.rebuild)
    return ReconciliationRun.objects.create(check_name=check.name, ok=outcome.ok, details=_plain(outcome.details),
                                            repaired=repaired, started_at=started, finished_at=timezone.now())


def _safe_run(check: Check) -> Outcome:
    try:
        return check.run(check)
    except Exception as exc:  # a broken check is a failed check, recorded, never silent
        logger.exception("reconciliation check %s raised", check.name)
        return Outcome(False, {"error": f"{type(exc).__name__}: {exc}"})


def _repair(check: Check, names: list[str]) -> tuple[bool, dict[str, Any]]:
    """Rebuild each named projection, then run the check again: repaired only if it now passes."""
    report: dict[str, Any] = {"rebuilt": [], "refused": []}
    for name in names:
        try:
            done = proj.rebuild(name)
            report["rebuilt"].append({"projection": name, "events": done.events, "status": done.status})
        except proj.RebuildAlreadyRunning:
            report["refused"].append(name)
    again = _safe_run(check)
    report["ok_after"] = again.ok
    if not again.ok:
        logger.error("reconciliation check %s still fails after repair", check.name)
    return again.ok and not report["refused"], report


# --- the built-in checks ----------------------------------------------------------------------
def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


@register_check("projection_lag", every=_setting("CQRS_RECONCILE_LAG_EVERY", 60),
                window=_setting("CQRS_RECONCILE_LAG_SECONDS", 300))
def projection_lag(check: Check) -> Outcome:
    """No projection is failed, or behind by an event older than the window."""
    behind = [{"projection": item.name, "status": item.status, "events_behind": item.events_behind,
               "seconds_behind": round(item.seconds_behind, 1)}
              for item in proj.lag()
              if item.status == proj.Status.FAILED or item.seconds_behind > check.window]
    return Outcome(not behind, {"window_seconds": check.window, "behind": behind})


@register_check("projections_replay", every=_setting("CQRS_RECONCILE_REPLAY_EVERY", 3600), window=0)
def projections_replay(check: Check) -> Outcome:
    """Every projection's rows equal a replay up to its checkpoint (exact: no window is needed)."""
    limit = int(_setting("CQRS_RECONCILE_VERIFY_MAX_EVENTS", 200_000))
    found, skipped, differing = [], [], []
    for projection in proj.projections():
        status = ProjectionState.objects.filter(name=projection.name).values_list("status", flat=True).first()
        size = StoredEvent.objects.filter(event_type__in=projection.event_types).count()
        if status == proj.Status.REBUILDING or size > limit:
            skipped.append({"projection": projection.name, "status": status, "events": size})
            continue
        result = verify(projection.name)
        found.append(result.as_dict())
        if not result.ok:
            differing.append(projection.name)
    return Outcome(not differing, {"differing": differing, "skipped": skipped,
                                   "projections": [f for f in found if not f["ok"]]}, rebuild=differing)


@register_check("sagas_overdue", every=_setting("CQRS_RECONCILE_SAGAS_EVERY", 300),
                window=_setting("CQRS_RECONCILE_SAGA_GRACE_SECONDS", 600))
def sagas_overdue(check: Check) -> Outcome:
    """No unfinished saga is past its deadline by more than the window (the sweep should have moved it)."""
    from .sagas.models import SagaInstance

    open_states = [SagaInstance.Status.PENDING, SagaInstance.Status.RUNNING, SagaInstance.Status.COMPENSATING]
    late = SagaInstance.objects.filter(status__in=open_states,
                                       deadline_at__lt=timezone.now() - dt.timedelta(seconds=check.window))
    rows = list(late.order_by("deadline_at").values("id", "saga_type", "status", "current_step", "deadline_at")[:MAX_LISTED])
    return Outcome(not rows, {"window_seconds": check.window, "overdue": late.count(), "examples": rows})
