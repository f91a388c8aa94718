"""A Celery app of one slow task, for measuring when the Redis transport redelivers a task lost with its worker.

Configured from the environment by the test that starts it: ``CELERY_BROKER_URL`` and
``REDELIVERY_TRANSPORT_OPTIONS`` (JSON); the acknowledgement settings are the project's
(``acks_late`` + ``reject_on_worker_lost``, prefetch 1).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from celery import Celery

app = Celery("redelivery", broker=os.environ.get("CELERY_BROKER_URL", "memory://"))
app.conf.update(
    task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
    task_serializer="json", accept_content=["json"], task_ignore_result=True, worker_hijack_root_logger=False,
    broker_transport_options=json.loads(os.environ.get("REDELIVERY_TRANSPORT_OPTIONS", "{}")),
)


@app.task(name="redelivery.hold")
def hold(marker_dir: str, seconds: float) -> None:
    """Leave a file named after the start time, then run for ``seconds``."""
    Path(marker_dir, f"{time.time():.3f}-{os.getpid()}").touch()
    time.sleep(seconds)
