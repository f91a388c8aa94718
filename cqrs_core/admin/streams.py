"""A stream's full history at ``/admin/ledgerline/streams/<stream>/``, and links to it and to events.

Pages by keyset on the stream's unique ``(stream_id, stream_version)`` index: ``?after=V`` (or
``?before=V``) reads at most one page past a version, so no page ever counts or offsets rows.
The stream's size is its last version (versions run 1..n without holes). ``?type=`` keeps one
event type, ``?data.<key>=<value>`` events whose data has that string value (e.g.
``?data.asset=BTC``), and ``?at=V`` opens the page holding version V, marked.
"""
from __future__ import annotations

import json
import re
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from ..models import StoredEvent
from ..store import stream_version
from .site import add_page

PER_PAGE = 50
_DATA_KEY = re.compile(r"^data\.([A-Za-z_][A-Za-z0-9_]{0,63})$")


def stream_url(stream_id: str, *, at: int | None = None, **data: str) -> str:
    """The history page of ``stream_id``; ``at`` opens the page of that version, ``data`` filters on data keys."""
    query = {f"data.{key}": value for key, value in data.items()}
    if at is not None:
        query["at"] = str(at)
    url = reverse("admin:ledgerline-stream", kwargs={"stream_id": stream_id})
    return f"{url}?{urlencode(query)}" if query else url


def event_url(position: int) -> str:
    """The admin page of the stored event at global ``position``."""
    return reverse("admin:cqrs_core_storedevent_change", args=[position])


def stream_link(stream_id: str, text: str = "history", *, at: int | None = None, **data: str) -> str:
    """An HTML link to a stream's history (see :func:`stream_url`)."""
    return format_html('<a href="{}">{}</a>', stream_url(stream_id, at=at, **data), text)


def event_link(position: int | None, text: str | None = None) -> str:
    """An HTML link to the stored event at ``position`` ("-" without one)."""
    if not position:
        return "-"
    return format_html('<a href="{}">{}</a>', event_url(position), text or f"event #{position}")


def _int(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else None


def _filtered(request: HttpRequest, stream_id: str) -> tuple[QuerySet[StoredEvent], dict[str, str]]:
    rows = StoredEvent.objects.filter(stream_id=stream_id)
    kept: dict[str, str] = {}
    if event_type := request.GET.get("type"):
        rows, kept["type"] = rows.filter(event_type=event_type), event_type
    for name, value in request.GET.items():
        if match := _DATA_KEY.match(name):
            rows, kept[name] = rows.filter(**{f"data__{match.group(1)}": value}), value
    return rows, kept


def _page(rows: QuerySet[StoredEvent], after: int | None, before: int | None) -> list[StoredEvent]:
    """At most one page in version order: after ``after`` or, given ``before``, the page ending before it."""
    if before is not None:
        return list(rows.filter(stream_version__lt=before).order_by("-stream_version")[:PER_PAGE])[::-1]
    return list(rows.filter(stream_version__gt=after or 0).order_by("stream_version")[:PER_PAGE])


def _beyond(rows: QuerySet[StoredEvent], base: str, kept: dict[str, str],
            events: list[StoredEvent]) -> tuple[str | None, str | None]:
    """Links to the older and the newer page, each only when it holds an event (one index probe each)."""
    if not events:
        return None, None
    first, last = events[0].stream_version, events[-1].stream_version
    older = rows.filter(stream_version__lt=first).exists() and f"{base}?{urlencode({**kept, 'before': first})}"
    newer = rows.filter(stream_version__gt=last).exists() and f"{base}?{urlencode({**kept, 'after': last})}"
    return older or None, newer or None


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def stream_view(request: HttpRequest, stream_id: str) -> HttpResponse:
    version = stream_version(stream_id)
    if not version:
        raise Http404(f"no events in stream {stream_id!r}")
    rows, kept = _filtered(request, stream_id)
    at, before = _int(request, "at"), _int(request, "before")
    after = (at - 1) // PER_PAGE * PER_PAGE if at else _int(request, "after")
    events = _page(rows, after, before)
    base = reverse("admin:ledgerline-stream", kwargs={"stream_id": stream_id})
    older, newer = _beyond(rows, base, kept, events)
    context = {
        **admin.site.each_context(request), "title": f"Stream {stream_id}", "stream_id": stream_id,
        "version": version, "filters": kept, "at": at, "newer": newer, "older": older,
        "first": f"{base}?{urlencode(kept)}" if kept else base,
        "events": [{"row": e, "url": event_url(e.position), "data": _pretty(e.data),
                    "metadata": _pretty(e.metadata)} for e in events],
        "changelist": reverse("admin:cqrs_core_storedevent_changelist") + "?" + urlencode({"stream": stream_id}),
    }
    return TemplateResponse(request, "admin/ledgerline/stream.html", context)


add_page("ledgerline/streams/<path:stream_id>/", stream_view, "ledgerline-stream")
