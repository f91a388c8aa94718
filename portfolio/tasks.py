"""Celery tasks of the portfolio context, each one call deep."""
from __future__ import annotations

from uuid import UUID

from celery import shared_task


@shared_task(name="portfolio.optimize", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def optimize_portfolio(user_id: int, claim: str) -> None:
    """Compute and store the user's optimised portfolio; a redelivery recomputes, which is harmless."""
    from .optimized import compute_and_store

    compute_and_store(user_id, UUID(claim))
