"""Extra pages of the default admin site (dashboard, stream history): added by wrapping ``get_urls``.

The site stays Django's default one, so every context's ``admin.register`` keeps working. Each
page goes through ``admin_view``: staff only (others are sent to the login page), never cached,
CSRF-protected.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, path

_PAGES: dict[str, tuple[str, Callable[..., HttpResponse]]] = {}


def add_page(route: str, view: Callable[..., HttpResponse], name: str) -> None:
    """Serve ``view`` at ``/admin/<route>`` as ``admin:<name>`` (staff only)."""
    _PAGES[name] = (route, view)


def _with_pages(get_urls: Callable[[], list[Any]]) -> Callable[[], list[URLPattern | URLResolver]]:
    def urls() -> list[URLPattern | URLResolver]:
        # Ahead of the site's own: its catch-all app_label pattern would otherwise take "ledgerline/...".
        pages = [path(route, admin.site.admin_view(view), name=name) for name, (route, view) in _PAGES.items()]
        return [*pages, *get_urls()]

    return urls


if not getattr(admin.site.get_urls, "ledgerline_pages", False):
    admin.site.get_urls = _with_pages(admin.site.get_urls)  # type: ignore[method-assign]
    admin.site.get_urls.ledgerline_pages = True  # type: ignore[attr-defined]
admin.site.index_template = "admin/ledgerline/index.html"
