"""The operator dashboard at ``/admin/ledgerline/dashboard/``: throughput, refusals, lag, sagas, checks.

Served through :mod:`cqrs_core.admin.site`; the admin index links to it through ``index_template``.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncMinute
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from ..models import CommandRecord, DeadLetter, StoredEvent
from ..ops_models import SUCCESS_OUTCOMES, CommandFailureMinute, ReconciliationRun
from ..sagas.models import SagaInstance
from .projections import ensure_states_read_first, read_lags
from .site import add_page

WINDOW_MINUTES = 60


def per_minute(rows: QuerySet[Any], field: str, since: dt.datetime, minutes: int = WINDOW_MINUTES) -> list[dict[str, Any]]:
    """Rows per minute from ``since`` on (every minute listed, zeros included), from an indexed timestamp."""
    counts = {_minute(row["minute"]): row["n"] for row in
              rows.filter(**{f"{field}__gte": since}).order_by().annotate(minute=TruncMinute(field))
              .values("minute").annotate(n=Count("pk"))}
    top = max(counts.values(), default=0) or 1
    slots = [since + dt.timedelta(minutes=i) for i in range(minutes)]
    return [{"minute": m, "count": counts.get(m, 0), "width": round(100 * counts.get(m, 0) / top)} for m in slots]


def _minute(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive UTC datetimes from TruncMinute; PostgreSQL aware ones.
    return value if timezone.is_aware(value) else timezone.make_aware(value, dt.timezone.utc)


def figures(now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard shows, as plain data (the template only formats it)."""
    now = now or timezone.now()
    ensure_states_read_first()
    since = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=WINDOW_MINUTES - 1)
    commands = per_minute(CommandRecord.objects.all(), "recorded_at", since)
    events = per_minute(StoredEvent.objects.all(), "recorded_at", since)
    succeeded = sum(m["count"] for m in commands)
    failures = list(CommandFailureMinute.objects.filter(minute__gte=since).exclude(code__in=SUCCESS_OUTCOMES)
                    .values("code").annotate(n=Sum("count")).order_by("-n", "code"))
    attempted = succeeded + sum(f["n"] for f in failures)
    return {
        "now": now, "since": since,
        "commands": commands, "commands_total": succeeded, "commands_per_minute": succeeded / WINDOW_MINUTES,
        "events": events, "events_total": sum(m["count"] for m in events),
        "errors": [{"code": f["code"], "count": f["n"], "rate": 100.0 * f["n"] / attempted} for f in failures],
        "attempted": attempted,
        "lags": list(read_lags().values()),
        "sagas": list(SagaInstance.objects.order_by().values("status").annotate(n=Count("pk")).order_by("status")),
        "dead_letters": list(DeadLetter.objects.filter(status=DeadLetter.Status.PENDING).order_by()
                             .values("projection").annotate(n=Count("pk")).order_by("projection")),
        "checks": _latest_runs(),
        "failed_checks_24h": ReconciliationRun.objects.filter(
            ok=False, started_at__gte=now - dt.timedelta(hours=24)).count(),
    }


def _latest_runs() -> list[ReconciliationRun]:
    """The latest run of each check that has run."""
    from ..reconciliation import checks

    latest = (ReconciliationRun.objects.filter(check_name=check.name).order_by("-started_at").first()
              for check in checks())
    return [run for run in latest if run is not None]


def dashboard_view(request: HttpRequest) -> HttpResponse:
    context = {**admin.site.each_context(request), "title": "Ledgerline dashboard", **figures()}
    return TemplateResponse(request, "admin/ledgerline/dashboard.html", context)


add_page("ledgerline/dashboard/", dashboard_view, "ledgerline-dashboard")
