from __future__ import annotations

from django.apps import AppConfig


class CqrsCoreConfig(AppConfig):
    name = "cqrs_core"
    verbose_name = "CQRS core"
    default_auto_field = "django.db.models.BigAutoField"
