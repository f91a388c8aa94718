from __future__ import annotations

from django.apps import AppConfig


class CqrsCoreConfig(AppConfig):
    name = "cqrs_core"
    verbose_name = "CQRS core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .bus import command_bus
        from .projections import apply_immediate, wake_projections

        if apply_immediate not in command_bus.in_transaction_hooks:
            command_bus.in_transaction_hooks.append(apply_immediate)
        if wake_projections not in command_bus.after_commit_hooks:
            command_bus.after_commit_hooks.append(wake_projections)
        # Saga state lives in its own module of this app; importing it registers the model.
        from .sagas import start_sagas_for_events

        if start_sagas_for_events not in command_bus.after_commit_hooks:
            command_bus.after_commit_hooks.append(start_sagas_for_events)
