"""Read models of the test-only context."""
from __future__ import annotations

from django.db import models

from cqrs_core.fields import ExactDecimalField


class AccountBalance(models.Model):
    account_id = models.UUIDField(primary_key=True)
    owner_id = models.BigIntegerField()
    currency = models.CharField(max_length=8)
    balance = ExactDecimalField(max_digits=38, decimal_places=18)
    transactions = models.IntegerField(default=0)
    position = models.BigIntegerField()


class LedgerEntry(models.Model):
    """One row per applied money event: counting rows per position proves exactly-once."""

    position = models.BigIntegerField(db_index=True)
    account_id = models.UUIDField(db_index=True)
    amount = ExactDecimalField(max_digits=38, decimal_places=18)


class AccountOwner(models.Model):
    """Maintained by an *immediate* projection, inside the command's transaction."""

    account_id = models.UUIDField(primary_key=True)
    owner_id = models.BigIntegerField(db_index=True)
