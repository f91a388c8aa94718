from __future__ import annotations

from django.apps import AppConfig


class YieldFarmingConfig(AppConfig):
    name = "yield_farming"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import catalogue, commands, projections, queries, sagas  # noqa: F401  (registers handlers and more)
