"""Celery tasks of yield farming, each one call deep."""
from __future__ import annotations

from decimal import Decimal

from celery import shared_task
from django.conf import settings
from django.utils import timezone


@shared_task(name="yield_farming.drift_apys", ignore_result=True)
def drift_apys_task() -> int:
    """Celery beat: move the catalogue's APYs by one seeded tick (when the simulated feed is on)."""
    from .feed import drift

    if not getattr(settings, "YIELD_SIMULATED_FEED", True):
        return 0
    return drift(timezone.now(), seed=int(getattr(settings, "YIELD_SIMULATION_SEED", 11)), interval=drift_interval(),
                 sigma=Decimal(str(getattr(settings, "YIELD_APY_DRIFT_SIGMA", "0.02"))))


def drift_interval() -> float:
    """Seconds per drift tick: the beat entry's schedule (``YIELD_APY_DRIFT_SECONDS``), 300 without one."""
    entry = getattr(settings, "CELERY_BEAT_SCHEDULE", {}).get("yield-apy-drift", {})
    return float(getattr(settings, "YIELD_APY_DRIFT_SECONDS", entry.get("schedule", 300.0)))
