"""The demo loader goes through commands and is idempotent."""
from __future__ import annotations

import io

import pytest

from cqrs_core.models import StoredEvent
from portfolio import demo
from portfolio.models import Portfolio
from trading.models import Trade

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_loads_users_deposits_and_trades_once() -> None:
    out = io.StringIO()
    demo.load(out)
    assert "0 refused" in out.getvalue(), out.getvalue()
    events = StoredEvent.objects.count()
    assert Portfolio.objects.count() == len(demo.USERS) and Trade.objects.count() == 6
    demo.load(io.StringIO())
    assert StoredEvent.objects.count() == events
