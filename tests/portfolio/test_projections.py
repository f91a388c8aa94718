"""Replay equals live for the portfolio and trades read models, and the read model equals the fold."""
from __future__ import annotations

import itertools
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cqrs_core.bus import command_bus
from cqrs_core.commands import Actor
from cqrs_core.errors import DomainError
from cqrs_core.projections import Status, rebuild
from cqrs_core.store import read_stream
from portfolio.commands import DepositFunds, SetRiskLimits, WithdrawFunds
from portfolio.models import Portfolio, Position
from portfolio.state import PORTFOLIO, portfolio_stream
from tests.portfolio.support import ExecuteTradeFactory
from trading.models import Trade

pytestmark = pytest.mark.django_db(transaction=True)

PORTFOLIOS, TRADES = "portfolio.portfolios", "trading.trades"
_user_ids = itertools.count(1000)


def portfolio_rows() -> Counter:
    return Counter(Portfolio.objects.values_list("user_id", "cash", "realised_pnl", "fees_paid", "max_position_usd",
                                                 "version", "position"))


def position_rows() -> Counter:
    return Counter(Position.objects.values_list("portfolio_id", "asset", "quantity", "average_cost", "realised_pnl"))


def trade_rows() -> Counter:
    return Counter(Trade.objects.values_list("trade_id", "user_id", "pair", "side", "amount", "price", "notional",
                                             "fee", "realised_pnl", "executed_at", "position"))


def test_rebuild_from_zero_equals_live_row_for_row(django_user_model: type) -> None:
    users = [django_user_model.objects.create_user(name).pk for name in ("ann", "ben")]
    for user_id in users:
        actor = Actor(user_id=user_id)
        command_bus.dispatch(DepositFunds(user_id=user_id, amount=Decimal("30000.5")), actor=actor)
        command_bus.dispatch(ExecuteTradeFactory(user_id=user_id, amount=Decimal("0.3")), actor=actor)
        command_bus.dispatch(ExecuteTradeFactory(user_id=user_id, pair="ETH/USD", price=Decimal("2450"),
                                                 amount=Decimal("2")), actor=actor)
        command_bus.dispatch(ExecuteTradeFactory(user_id=user_id, side="sell", price=Decimal("51000"),
                                                 amount=Decimal("0.1")), actor=actor)
        command_bus.dispatch(WithdrawFunds(user_id=user_id, amount=Decimal("100")), actor=actor)
    command_bus.dispatch(SetRiskLimits(user_id=users[1], max_position_usd=Decimal("5000")))
    live = (portfolio_rows(), position_rows(), trade_rows())
    assert all(live) and len(live[2]) == 6
    assert rebuild(PORTFOLIOS).status == Status.RUNNING
    assert rebuild(TRADES).status == Status.RUNNING
    assert (portfolio_rows(), position_rows(), trade_rows()) == live


OPS = st.lists(st.tuples(
    st.sampled_from(["deposit", "withdraw", "buy", "sell"]),
    st.sampled_from(["BTC/USD", "ETH/USD", "SOL/USD"]),
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("5"), places=6),
    st.decimals(min_value=Decimal("-0.05"), max_value=Decimal("0.05"), places=3),
), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_the_read_model_equals_folding_the_events(ops: list, fixed_market: dict) -> None:
    user_id = next(_user_ids)  # a fresh portfolio per example: no clean-up between examples
    actor = Actor(user_id=user_id)
    for kind, pair, amount, skew in ops:
        price = fixed_market[pair] * (1 + skew)
        match kind:
            case "deposit":
                command = DepositFunds(user_id=user_id, amount=amount * 10000)
            case "withdraw":
                command = WithdrawFunds(user_id=user_id, amount=amount * 1000)
            case _:
                command = ExecuteTradeFactory(user_id=user_id, side=kind, pair=pair, amount=amount, price=price)
        try:
            command_bus.dispatch(command, actor=actor)
        except DomainError:
            pass  # refusals store nothing; the property is about what was stored
    state = PORTFOLIO.fold(read_stream(portfolio_stream(user_id)))
    row = Portfolio.objects.filter(pk=user_id).first()
    if state is None:
        assert row is None
        return
    assert (row.cash, row.realised_pnl, row.fees_paid) == (state.cash, state.realised_pnl, state.fees_paid)
    held = {p.asset: (p.quantity, p.average_cost, p.realised_pnl) for p in Position.objects.filter(portfolio=row)}
    assert held == {a: (h.quantity, h.average_cost, h.realised_pnl) for a, h in state.holdings.items()}
    assert state.cash >= 0 and all(h.quantity >= 0 for h in state.holdings.values())
