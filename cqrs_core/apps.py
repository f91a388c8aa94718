from __future__ import annotations

from django.apps import AppConfig


class CqrsCoreConfig(AppConfig):
    name = "cqrs_core"
    verbose_name = "CQRS core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .bus import command_bus
        from .projections import apply_immediate
        from .wakeups import wake_projections

        if apply_immediate not in command_bus.in_transaction_hooks:
            command_bus.in_transaction_hooks.append(apply_immediate)
        if wake_projections not in command_bus.after_commit_hooks:
            command_bus.after_commit_hooks.append(wake_projections)
        # Saga state lives in its own module of this app; importing it registers the model.
        from .sagas import start_sagas_for_events

        if start_sagas_for_events not in command_bus.after_commit_hooks:
            command_bus.after_commit_hooks.append(start_sagas_for_events)
        # Operator records (refused commands per minute, reconciliation runs) and the built-in checks.
        from . import reconciliation  # noqa: F401  (registers the built-in checks)
        from .ops_models import record_command_outcome

        if record_command_outcome not in command_bus.observers:
            command_bus.observers.append(record_command_outcome)
        # Metrics, the ids in log records and in Celery message headers (metrics, logs, signals).
        from . import signals  # noqa: F401  (connects the Celery signal handlers)
        from .logs import bind_command_id
        from .metrics import count_appended, observe_command, observe_query
        from .queries import query_bus

        if bind_command_id not in command_bus.middleware:
            command_bus.middleware.insert(0, bind_command_id)
        if observe_command not in command_bus.observers:
            command_bus.observers.append(observe_command)
        if count_appended not in command_bus.after_commit_hooks:
            command_bus.after_commit_hooks.append(count_appended)
        if observe_query not in query_bus.observers:
            query_bus.observers.append(observe_query)
