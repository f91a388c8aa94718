"""Demo data: a strategy for demo_ada and two of its signals, one accepted and one rejected (idempotent)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from django.contrib.auth import get_user_model

from cqrs_core.bus import command_bus
from cqrs_core.commands import Actor, Command
from cqrs_core.errors import DomainError
from portfolio import market

from .events import BUY, StrategyRules
from .strategy_commands import CreateStrategy, ExecuteStrategySignal

#: Namespace of the demo's ids: a second run replays the same command ids and changes nothing.
DEMO_NAMESPACE = UUID("0c9a3f7e-5b21-4d8e-a6f4-2e7b9d1c3a58")
OWNER = "demo_ada"
RULES = StrategyRules(allowed_pairs=("BTC/USD", "ETH/USD"), max_notional_usd=Decimal(5000))
#: (pair, USD to spend): BTC passes the rules; SOL is not an allowed pair, so it is recorded as rejected.
SIGNALS = (("BTC/USD", Decimal(1000)), ("SOL/USD", Decimal(500)))


def load(stdout: Any) -> None:
    """``LEDGERLINE_DEMO_LOADERS`` entry, after the portfolio's (signals trade demo_ada's cash)."""
    user, _ = get_user_model().objects.get_or_create(username=OWNER)
    strategy_id = uuid5(DEMO_NAMESPACE, f"{OWNER}:strategy")
    commands: list[Command] = [CreateStrategy(strategy_id=strategy_id, owner_id=user.pk, name="Ada's BTC/ETH swing",
                                              rules=RULES, risk_profile="moderate")]
    prices = market.snapshot().prices
    for n, (pair, spend) in enumerate(SIGNALS):
        price = prices.get(pair)
        if price is None:
            continue
        commands.append(ExecuteStrategySignal(
            user_id=user.pk, strategy_id=strategy_id, signal_id=uuid5(DEMO_NAMESPACE, f"{OWNER}:signal:{n}"),
            trade_id=uuid5(DEMO_NAMESPACE, f"{OWNER}:trade:{n}"), pair=pair, side=BUY,
            amount=(spend / price).quantize(Decimal("1e-6")), price=price, confidence=Decimal("0.7")))
    outcomes = []
    for n, command in enumerate(commands):
        try:
            result = command_bus.dispatch(command, actor=Actor(user_id=user.pk),
                                          command_id=uuid5(DEMO_NAMESPACE, f"{OWNER}:{n}"))
            outcomes.append(result.data.get("outcome", "created"))
        except DomainError as exc:
            outcomes.append(f"refused ({exc.code})")
    stdout.write(f"Trading:        {OWNER}: strategy and signals: {', '.join(outcomes)}")
