"""Celery tasks of the market, each one call deep."""
from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone


@shared_task(name="market.tick", ignore_result=True)
def tick_task() -> int:
    """Celery beat: append the simulated feed's closed 1m candles up to now (when the feed is on)."""
    from .ingest import tick

    if not getattr(settings, "MARKET_SIMULATED_FEED", False):
        return 0
    return tick(timezone.now(), seed=settings.MARKET_SIMULATION_SEED,
                max_candles=settings.MARKET_TICK_MAX_CANDLES).recorded
