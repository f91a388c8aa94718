"""The Celery app; configuration comes from Django settings (``CELERY_*``)."""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("ledgerline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

#: Tasks that beat sends again on schedule, or that are only hints: acknowledged on receipt, so a
#: lost one is simply skipped, and a long run (a reconciliation replay) is never handed to a
#: second worker when it outlives the Redis visibility timeout (settings: CELERY_BROKER_TRANSPORT_OPTIONS).
#: The work whose loss matters (queued commands, saga steps, projection runs) keeps ``acks_late``.
ACKED_ON_RECEIPT = ("cqrs_core.sweep_projections", "cqrs_core.sweep_sagas", "cqrs_core.reconcile",
                    "cqrs_core.refresh_query", "market.tick", "yield_farming.drift_apys")
app.conf.task_annotations = {name: {"acks_late": False} for name in ACKED_ON_RECEIPT}
