"""Read models of the portfolio context (ORM), written only by ``portfolio.projections``."""
from __future__ import annotations

from decimal import Decimal

from django.db import models

from cqrs_core.fields import ExactDecimalField


def money_field(**kwargs: object) -> ExactDecimalField:
    """Exact money and quantities: 20 integer digits and 18 places (never a float column)."""
    return ExactDecimalField(max_digits=38, decimal_places=18, **kwargs)  # type: ignore[arg-type]


class Portfolio(models.Model):
    """One row per user's portfolio; ``position`` is the global position of its last applied event."""

    user_id = models.BigIntegerField(primary_key=True)
    cash = money_field(default=Decimal(0))
    realised_pnl = money_field(default=Decimal(0))
    fees_paid = money_field(default=Decimal(0))
    max_position_usd = money_field(null=True, blank=True)
    reserved = money_field(default=Decimal(0))
    yield_principal = money_field(default=Decimal(0))
    version = models.PositiveIntegerField(default=0)
    position = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"portfolio-{self.user_id}"


class Position(models.Model):
    """An asset held in a portfolio (kept at quantity zero once sold, for its realised P&L)."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="positions")
    asset = models.CharField(max_length=20)
    quantity = money_field()
    average_cost = money_field()
    realised_pnl = money_field(default=Decimal(0))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["portfolio", "asset"], name="portfolio_position_asset")]
        ordering = ["asset"]

    def __str__(self) -> str:
        return f"{self.asset} {self.quantity}"


class OptimizedPortfolio(models.Model):
    """The latest optimisation of one user's portfolio (``portfolio.optimized``), one row per user.

    Not a projection's read model: a computed artifact that a Celery task writes, like a cache
    entry that must survive restarts and carry its own bookkeeping. ``requested_*`` and ``claim``
    mark the computation in progress (one per user: claimed by a conditional UPDATE);
    ``computed_at``, ``based_on_position`` and ``duration_ms`` describe the stored ``result``.
    """

    class Status(models.TextChoices):
        IDLE = "idle"
        COMPUTING = "computing"
        READY = "ready"
        FAILED = "failed"

    user_id = models.BigIntegerField(primary_key=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.IDLE)
    claim = models.UUIDField(null=True, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    requested_position = models.BigIntegerField(default=0)
    computed_at = models.DateTimeField(null=True, blank=True)
    based_on_position = models.BigIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["computed_at"], name="portfolio_optimized_computed")]

    def __str__(self) -> str:
        return f"optimized-{self.user_id} ({self.status})"
