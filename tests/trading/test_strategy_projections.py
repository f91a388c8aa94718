"""Replay equals live for the strategy read models, row for row, with a trade outside any strategy."""
from __future__ import annotations

from collections import Counter
from decimal import Decimal
from uuid import uuid4

import pytest

from cqrs_core.bus import command_bus
from cqrs_core.commands import Actor
from cqrs_core.projections import Status, rebuild
from portfolio.commands import DepositFunds
from tests.portfolio.support import ExecuteTradeFactory
from trading.events import StrategyRules
from trading.models import Strategy, StrategyPosition, StrategySignal, Trade
from trading.strategy_commands import ArchiveStrategy, CreateStrategy, UpdateStrategy

from .support import SignalFactory

pytestmark = pytest.mark.django_db(transaction=True)


def rows() -> tuple[Counter, ...]:
    return (
        Counter(Strategy.objects.values_list(
            "strategy_id", "owner_id", "name", "risk_profile", "status", "signals_accepted", "signals_rejected",
            "created_at", "updated_at", "archived_at", "version", "position")),
        Counter(str(r) for r in Strategy.objects.values_list("strategy_id", "rules")),
        Counter(str(r) for r in StrategySignal.objects.values_list()),
        Counter(StrategyPosition.objects.values_list("strategy_id", "asset", "quantity", "average_cost", "realised_pnl",
                                                     "fees", "bought", "sold", "unmatched_sold")),
        Counter(Trade.objects.values_list("trade_id", "strategy_id", "realised_pnl", "position")),
    )


def test_rebuild_from_zero_equals_live_row_for_row(django_user_model: type) -> None:
    for name in ("ann", "ben"):
        user_id = django_user_model.objects.create_user(name).pk
        actor = Actor(user_id=user_id)
        dispatch = lambda command: command_bus.dispatch(command, actor=actor)  # noqa: E731
        dispatch(DepositFunds(user_id=user_id, amount=Decimal("100000")))
        dispatch(ExecuteTradeFactory(user_id=user_id, amount=Decimal("0.1")))
        strategy_id, spare_id = uuid4(), uuid4()
        rules = StrategyRules(allowed_pairs=("BTC/USD", "ETH/USD"))
        dispatch(CreateStrategy(strategy_id=strategy_id, owner_id=user_id, name="a", rules=rules,
                                risk_profile="aggressive"))
        dispatch(CreateStrategy(strategy_id=spare_id, owner_id=user_id, name="b", rules=rules,
                                risk_profile="moderate"))
        for signal in [{"amount": Decimal("0.05")}, {"amount": Decimal("0.05"), "price": Decimal("51000")},
                       {"pair": "ETH/USD", "price": Decimal("2500"), "amount": Decimal(1)},
                       {"side": "sell", "amount": Decimal("0.12"), "price": Decimal("52000")},
                       {"pair": "SOL/USD", "price": Decimal(100), "amount": Decimal(1)},
                       {"confidence": Decimal("0.01"), "amount": Decimal("0.01")}]:
            dispatch(SignalFactory(user_id=user_id, strategy_id=strategy_id, **signal))
        dispatch(UpdateStrategy(strategy_id=strategy_id, name="a2", risk_profile="conservative"))
        dispatch(SignalFactory(user_id=user_id, strategy_id=strategy_id, amount=Decimal("0.1")))  # over 1,000
        dispatch(ArchiveStrategy(strategy_id=spare_id))
    live = rows()
    assert all(live) and sum(live[2].values()) == 14 and len(live[3]) == 4
    accepted = StrategySignal.objects.filter(outcome="accepted").count()
    assert accepted == 10 and Trade.objects.exclude(strategy_id=None).count() == accepted
    assert rebuild("trading.strategies").status == Status.RUNNING
    assert rebuild("trading.trades").status == Status.RUNNING
    assert rows() == live


def test_the_strategy_book_realises_only_what_the_strategy_bought(django_user_model: type) -> None:
    user_id = django_user_model.objects.create_user("cy").pk
    actor = Actor(user_id=user_id)
    command_bus.dispatch(DepositFunds(user_id=user_id, amount=Decimal("100000")), actor=actor)
    command_bus.dispatch(ExecuteTradeFactory(user_id=user_id, amount=Decimal("0.1")), actor=actor)
    strategy_id = uuid4()
    command_bus.dispatch(CreateStrategy(strategy_id=strategy_id, owner_id=user_id, name="a", risk_profile="aggressive",
                                        rules=StrategyRules(allowed_pairs=("BTC/USD",))), actor=actor)
    for side, amount, price in [("buy", "0.03", "50000"), ("buy", "0.01", "52000"), ("sell", "0.05", "51000")]:
        command_bus.dispatch(SignalFactory(user_id=user_id, strategy_id=strategy_id, side=side, amount=Decimal(amount),
                                           price=Decimal(price)), actor=actor)
    book = StrategyPosition.objects.get(strategy_id=strategy_id)
    assert book.quantity == 0 and book.average_cost == 0 and book.unmatched_sold == Decimal("0.01")
    assert book.realised_pnl == Decimal("20")  # (51,000 - 50,500) x 0.04
    assert book.bought == Decimal("0.04") and book.sold == Decimal("0.05")
    assert book.fees == Decimal("1.5") + Decimal("0.52") + Decimal("2.55")
