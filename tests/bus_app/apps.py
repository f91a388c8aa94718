from __future__ import annotations

from django.apps import AppConfig


class BusAppConfig(AppConfig):
    name = "tests.bus_app"
    label = "bus_app"

    def ready(self) -> None:
        from . import commands, projections, queries, sagas  # noqa: F401  (each registers itself)
