from __future__ import annotations

from django.apps import AppConfig


class PortfolioConfig(AppConfig):
    name = "portfolio"
    default_auto_field = "django.db.models.BigAutoField"
