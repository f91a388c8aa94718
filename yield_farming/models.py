"""Read models of yield farming (ORM), written only by ``yield_farming.projections``."""
from __future__ import annotations

from decimal import Decimal

from django.db import models

from portfolio.models import money_field


class Protocol(models.Model):
    """One catalogue entry: APY in percent a year, TVL in USD, risk score 1 (safest) to 10."""

    slug = models.SlugField(max_length=80, primary_key=True)
    name = models.CharField(max_length=120)
    chain = models.CharField(max_length=40)
    asset = models.CharField(max_length=20)
    apy = money_field()
    tvl = money_field()
    audited = models.BooleanField()
    risk_score = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField()
    position = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["slug"]
        indexes = [models.Index(fields=["chain", "asset"], name="yield_protocol_chain_asset")]

    def __str__(self) -> str:
        return self.slug


class YieldStrategy(models.Model):
    """A requested strategy: who, how much, and where its reservation went (the saga has the status)."""

    strategy_id = models.UUIDField(primary_key=True)
    user_id = models.BigIntegerField(db_index=True)
    saga_id = models.UUIDField(unique=True)
    protocols = models.JSONField(default=list)
    amount = money_field()
    risk_tolerance = models.CharField(max_length=20)
    allocated = money_field(default=Decimal(0))
    released = money_field(default=Decimal(0))
    requested_at = models.DateTimeField()
    position = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-requested_at", "-position"]

    def __str__(self) -> str:
        return f"strategy {self.strategy_id}"


class YieldPosition(models.Model):
    """Principal placed in one protocol at the APY it had when opened; open until ``closed_at``."""

    position_id = models.UUIDField(primary_key=True)
    user_id = models.BigIntegerField()
    strategy_id = models.UUIDField(db_index=True)
    protocol = models.CharField(max_length=80)
    principal = money_field()
    apy = money_field()
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=40, blank=True, default="")
    position = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-opened_at", "protocol"]
        indexes = [models.Index(fields=["user_id", "opened_at"], name="yield_position_user_time")]

    def __str__(self) -> str:
        return f"{self.protocol} {self.principal}"
