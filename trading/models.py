"""Read models of the trading context (ORM), written only by ``trading.projections``."""
from __future__ import annotations

from decimal import Decimal

from django.db import models

from portfolio.models import money_field


class Trade(models.Model):
    """One executed trade, as ``TradeExecuted`` recorded it."""

    class Side(models.TextChoices):
        BUY = "buy"
        SELL = "sell"

    trade_id = models.UUIDField(primary_key=True)
    user_id = models.BigIntegerField()
    client_trade_id = models.CharField(max_length=64, null=True, blank=True)
    pair = models.CharField(max_length=24)
    side = models.CharField(max_length=4, choices=Side.choices)
    amount = money_field()
    price = money_field()
    notional = money_field()
    fee = money_field()
    realised_pnl = money_field(default=Decimal(0))
    executed_at = models.DateTimeField()
    position = models.BigIntegerField(unique=True)
    strategy_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["-executed_at", "-position"]
        indexes = [
            models.Index(fields=["user_id", "executed_at"], name="trade_user_time"),
            models.Index(fields=["pair", "executed_at"], name="trade_pair_time"),
            models.Index(fields=["strategy_id", "executed_at"], name="trade_strategy_time"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.amount} {self.pair} @ {self.price}"


class Strategy(models.Model):
    """A strategy's definition, status and signal counts; ``rules`` as exact JSON (money as strings)."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        ARCHIVED = "archived"

    strategy_id = models.UUIDField(primary_key=True)
    owner_id = models.BigIntegerField()
    name = models.CharField(max_length=100)
    rules = models.JSONField()
    risk_profile = models.CharField(max_length=16)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    signals_accepted = models.PositiveIntegerField(default=0)
    signals_rejected = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    archived_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(help_text="Version of the strategy's stream: its ETag.")
    position = models.BigIntegerField(help_text="Global position of the last event applied to this row.")

    class Meta:
        ordering = ["-created_at", "-strategy_id"]
        indexes = [models.Index(fields=["owner_id", "status", "created_at"], name="strategy_owner_status")]

    def __str__(self) -> str:
        return self.name


class StrategySignal(models.Model):
    """One signal sent to a strategy and what became of it (the trade it placed, or why not)."""

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted"
        REJECTED = "rejected"

    signal_id = models.UUIDField(primary_key=True)
    strategy_id = models.UUIDField()
    user_id = models.BigIntegerField()
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    reason = models.CharField(max_length=64, null=True, blank=True)
    detail = models.TextField(blank=True, default="")
    context = models.JSONField(default=dict)
    trade_id = models.UUIDField(null=True, blank=True)
    pair = models.CharField(max_length=24)
    side = models.CharField(max_length=4)
    amount = money_field()
    price = money_field()
    confidence = money_field(null=True, blank=True)
    client_trade_id = models.CharField(max_length=64, null=True, blank=True)
    decided_at = models.DateTimeField()
    position = models.BigIntegerField(unique=True)

    class Meta:
        ordering = ["-decided_at", "-position"]
        indexes = [models.Index(fields=["strategy_id", "decided_at"], name="signal_strategy_time")]

    def __str__(self) -> str:
        return f"{self.outcome} {self.side} {self.amount} {self.pair}"


class StrategyPosition(models.Model):
    """One asset in a strategy's own book: average cost over the strategy's trades only.

    ``quantity`` is what the strategy bought and has not sold; a sell beyond it realises nothing
    for the strategy (those units came from outside it) and is counted in ``unmatched_sold``.
    """

    strategy_id = models.UUIDField()
    asset = models.CharField(max_length=20)
    quantity = money_field(default=Decimal(0))
    average_cost = money_field(default=Decimal(0))
    realised_pnl = money_field(default=Decimal(0))
    fees = money_field(default=Decimal(0))
    bought = money_field(default=Decimal(0))
    sold = money_field(default=Decimal(0))
    unmatched_sold = money_field(default=Decimal(0))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["strategy_id", "asset"], name="strategy_position_asset")]
        ordering = ["asset"]

    def __str__(self) -> str:
        return f"{self.asset} {self.quantity}"
