"""The Celery app; configuration comes from Django settings (``CELERY_*``)."""
from __future__ import annotations

import os

from typing import Any

from celery import Celery, signals

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


@signals.task_prerun.connect(weak=False, dispatch_uid="ledgerline.db_connections_before_task")
@signals.task_postrun.connect(weak=False, dispatch_uid="ledgerline.db_connections_after_task")
def close_old_db_connections(sender: Any = None, **kwargs: Any) -> None:
    """Around a worker's task, what Django does around a request: drop only unusable or expired connections.

    Celery's fixup closes every connection around every task unless ``CELERY_DB_REUSE_MAX`` is set
    (settings); with it set, this keeps Django's rules (``CONN_MAX_AGE``, a connection left outside
    autocommit, errors since the last commit) and re-arms the health check for the task's first query.
    """
    if getattr(getattr(sender, "request", None), "is_eager", False) or not app.conf.get("db_reuse_max"):
        return
    from django.db import close_old_connections

    close_old_connections()
