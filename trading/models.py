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

    class Meta:
        ordering = ["-executed_at", "-position"]
        indexes = [
            models.Index(fields=["user_id", "executed_at"], name="trade_user_time"),
            models.Index(fields=["pair", "executed_at"], name="trade_pair_time"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.amount} {self.pair} @ {self.price}"
