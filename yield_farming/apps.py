from __future__ import annotations

from django.apps import AppConfig


class YieldFarmingConfig(AppConfig):
    name = "yield_farming"
    default_auto_field = "django.db.models.BigAutoField"
