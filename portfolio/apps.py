from __future__ import annotations

from django.apps import AppConfig


class PortfolioConfig(AppConfig):
    name = "portfolio"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import commands, projections, queries, rebalance_queries, rebalance_saga  # noqa: F401  (registers them)
