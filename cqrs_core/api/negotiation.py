"""Content negotiation with a shortcut for what API clients send: no ``Accept``, ``*/*`` or the first renderer's type."""
from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation; the common cases answer without parsing the header, with DRF's answer.

    DRF answers ``*/*`` (also a missing ``Accept``) with the first renderer and its media type,
    and an ``Accept`` that is exactly a renderer's type with that renderer: the same here.
    Anything else (a format suffix or ``?format=``, a list, parameters, q-values) goes to DRF.
    """

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: str | None = None) -> Any:
        if renderers and not format_suffix and self.settings.URL_FORMAT_OVERRIDE not in request.query_params:
            first = renderers[0]
            accept = request.META.get("HTTP_ACCEPT", "*/*")
            if (accept == "*/*" and "*" not in first.media_type) or accept == first.media_type:
                return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
