"""ExactDecimalField: money columns keep every digit on SQLite as on PostgreSQL."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests.bus_app.models import AccountBalance

# 30 significant digits: SQLite's NUMERIC affinity would keep 15 of them.
WIDE = Decimal("123456789012.123456789012345678")


@pytest.mark.django_db
def test_a_wide_decimal_round_trips_exactly() -> None:
    row = AccountBalance.objects.create(account_id=uuid.uuid4(), owner_id=1, currency="USD", balance=WIDE, position=1)
    assert AccountBalance.objects.get(pk=row.pk).balance == WIDE


@pytest.mark.django_db
def test_values_come_back_with_the_column_scale() -> None:
    row = AccountBalance.objects.create(account_id=uuid.uuid4(), owner_id=1, currency="USD", balance=Decimal("1.5"),
                                        position=1)
    assert str(AccountBalance.objects.get(pk=row.pk).balance) == "1.500000000000000000"
