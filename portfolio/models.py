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


class Rebalance(models.Model):
    """One rebalance: its plan as planned (exact JSON) and, once executed, where its saga stands.

    ``failed`` means a reversal gave up (an operator retries the saga); ``position`` is the global
    position of its last applied event.
    """

    class Status(models.TextChoices):
        PLANNED = "planned"
        EXECUTING = "executing"
        COMPENSATING = "compensating"
        COMPLETED = "completed"
        COMPENSATED = "compensated"
        FAILED = "failed"

    rebalance_id = models.UUIDField(primary_key=True)
    user_id = models.BigIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices)
    targets = models.JSONField()
    plan = models.JSONField()
    total_value = money_field()
    estimated_cost = money_field()
    trade_count = models.PositiveIntegerField()
    saga_id = models.UUIDField(null=True, blank=True, unique=True)
    reason = models.TextField(blank=True, default="")
    planned_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    position = models.BigIntegerField()

    class Meta:
        ordering = ["-planned_at", "-position"]
        indexes = [models.Index(fields=["user_id", "planned_at"], name="rebalance_user_time")]

    def __str__(self) -> str:
        return f"rebalance {self.rebalance_id} ({self.status})"


class RebalanceTimelineEntry(models.Model):
    """One thing that happened to a rebalance, at the global position of the event that says so.

    ``kind``: execution_started, trade, reversal, step_completed, step_failed,
    compensation_completed, operator_action, completed, compensated or failed.
    """

    rebalance = models.ForeignKey(Rebalance, on_delete=models.CASCADE, related_name="timeline")
    position = models.BigIntegerField()
    at = models.DateTimeField()
    kind = models.CharField(max_length=30)
    step = models.CharField(max_length=40, blank=True, default="")
    trade_index = models.IntegerField(null=True, blank=True)
    trade_id = models.UUIDField(null=True, blank=True)
    pair = models.CharField(max_length=24, blank=True, default="")
    side = models.CharField(max_length=4, blank=True, default="")
    amount = money_field(null=True, blank=True)
    price = money_field(null=True, blank=True)
    notional = money_field(null=True, blank=True)
    fee = money_field(null=True, blank=True)
    detail = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["rebalance", "position"], name="rebalance_timeline_position")]

    def __str__(self) -> str:
        return f"{self.kind} at {self.position}"
