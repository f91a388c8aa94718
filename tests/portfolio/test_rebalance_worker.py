"""RebalanceSaga on a real Celery worker: each step its own task, prices read from real candles.

Services only, like ``tests/sagas/test_worker.py``, whose worker helpers it reuses.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection

from cqrs_core.bus import command_bus
from cqrs_core.commands import Actor
from cqrs_core.sagas import sweep_sagas
from cqrs_core.store import read_stream
from market.commands import RecordCandles
from market.events import CandleData
from market.models import Candle
from portfolio.commands import DepositFunds, ExecuteRebalance, RebalancePortfolio, WithdrawFunds
from portfolio.models import Rebalance
from portfolio.state import portfolio_stream
from tests.portfolio.support import PRICES, ExecuteTradeFactory
from tests.projections.test_worker import Workers, wait_for, workers  # noqa: F401  (fixture)
from trading.events import TradeExecuted

pytestmark = [
    pytest.mark.django_db(transaction=True, reset_sequences=True),
    pytest.mark.services,
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")) or connection.vendor != "postgresql",
        reason="needs a real broker and PostgreSQL (the worker is another process)",
    ),
]
OPEN = dt.datetime(2026, 11, 23, 12, tzinfo=dt.timezone.utc)


def record_market() -> None:
    """Candles at the prices the in-process fixed market shows, so both processes see one market."""
    for pair, price in PRICES.items():
        candle = CandleData(open_time=OPEN, open=price, high=price, low=price, close=price, volume=Decimal(1000))
        command_bus.dispatch(RecordCandles(pair=pair, timeframe="1h", candles=(candle,)))


def funded(user_id: int) -> Actor:
    actor = Actor(user_id=user_id)
    command_bus.dispatch(DepositFunds(user_id=user_id, amount=Decimal("15005")), actor=actor)
    command_bus.dispatch(ExecuteTradeFactory(user_id=user_id, amount=Decimal("0.1")), actor=actor)
    return actor


def status(rebalance_id: uuid.UUID) -> str:
    return Rebalance.objects.filter(pk=rebalance_id).values_list("status", flat=True).first() or ""


def rebalance_trades(user_id: int) -> Counter:
    return Counter(r.event.client_trade_id for r in read_stream(portfolio_stream(user_id))
                   if isinstance(r.event, TradeExecuted) and r.event.client_trade_id)


def test_rebalances_complete_and_compensate_on_a_real_worker(workers: Workers) -> None:  # noqa: F811
    workers.start()
    record_market()
    wait_for(lambda: Candle.objects.count() == len(PRICES), "the candles to be projected", workers)
    ok, failing = uuid.uuid4(), uuid.uuid4()
    command_bus.dispatch(RebalancePortfolio(user_id=8001, rebalance_id=ok, execute=True,
                                            targets={"ETH": Decimal(50), "USD": Decimal(50)}), actor=funded(8001))
    actor = funded(8002)
    command_bus.dispatch(RebalancePortfolio(user_id=8002, rebalance_id=failing,
                                            targets={"ETH": Decimal(50), "SOL": Decimal(50)}), actor=actor)
    command_bus.dispatch(WithdrawFunds(user_id=8002, amount=Decimal("5000")), actor=actor)
    command_bus.dispatch(ExecuteRebalance(user_id=8002, rebalance_id=failing), actor=actor)

    wait_for(lambda: status(ok) == "completed" and status(failing) == "compensated", "the rebalances to end",
             workers, every=sweep_sagas)
    assert rebalance_trades(8001) == Counter({f"rb:{ok}:0": 1, f"rb:{ok}:1": 1})
    assert rebalance_trades(8002) == Counter({f"rb:{failing}:{n}": 1 for n in ("0", "1", "1:undo", "0:undo")})
    assert "insufficient_funds" in Rebalance.objects.get(pk=failing).reason
