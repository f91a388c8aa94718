"""Demo data: a few users with deposits and trades, all through the command bus (idempotent)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from django.contrib.auth import get_user_model

from cqrs_core.bus import command_bus
from cqrs_core.commands import Actor, Command
from cqrs_core.errors import DomainError
from trading.commands import ExecuteTrade

from . import market
from .commands import DepositFunds, RebalancePortfolio, WithdrawFunds

#: Namespace of the demo's command ids: a second run replays the same ids and changes nothing.
DEMO_NAMESPACE = UUID("5d1f3a52-7c0e-4a8e-9d0b-1b6a2f4c9e10")
#: (username, deposit, [(pair, side, share of cash or of the holding)]).
USERS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    ("demo_ada", "50000", (("BTC/USD", "buy", "0.3"), ("ETH/USD", "buy", "0.2"), ("BTC/USD", "sell", "0.5"))),
    ("demo_grace", "20000", (("SOL/USD", "buy", "0.4"), ("ETH/USD", "buy", "0.1"))),
    ("demo_linus", "5000", (("BTC/USD", "buy", "0.5"),)),
)
#: (username, target allocation in percent): planned, not executed, so the demo shows a plan to run.
REBALANCES: tuple[tuple[str, dict[str, str]], ...] = (
    ("demo_ada", {"BTC": "40", "ETH": "30", "SOL": "10", "USD": "20"}),
)


def load(stdout: Any) -> None:
    """``LEDGERLINE_DEMO_LOADERS`` entry, after the market's (trades need its latest prices)."""
    snap = market.snapshot()
    done = refused = 0
    for username, cash, trades in USERS:
        user, _ = get_user_model().objects.get_or_create(username=username)
        actor = Actor(user_id=user.pk)
        commands: list[Command] = [DepositFunds(user_id=user.pk, amount=Decimal(cash))]
        for n, (pair, side, share) in enumerate(trades):
            price = snap.prices.get(pair)
            if price is None:
                continue
            amount = (Decimal(cash) * Decimal(share) / price).quantize(Decimal("1e-6"))
            if side == "sell":
                amount = (amount * Decimal(share)).quantize(Decimal("1e-6"))
            commands.append(ExecuteTrade(user_id=user.pk, trade_id=uuid5(DEMO_NAMESPACE, f"{username}:trade:{n}"),
                                         pair=pair, side=side, amount=amount, price=price))
        commands.append(WithdrawFunds(user_id=user.pk, amount=Decimal(100)))
        for n, command in enumerate(commands):
            try:
                command_bus.dispatch(command, actor=actor, command_id=uuid5(DEMO_NAMESPACE, f"{username}:{n}"))
                done += 1
            except DomainError as exc:
                refused += 1
                stdout.write(f"Portfolio:      {username}: {command.command_type} refused ({exc.code})")
    stdout.write(f"Portfolio:      {len(USERS)} demo users, {done} commands handled, {refused} refused")
    plan_rebalances(stdout)


def plan_rebalances(stdout: Any) -> None:
    """A rebalance plan per ``REBALANCES`` entry, under fixed ids: a second run replays, plans nothing new."""
    for username, targets in REBALANCES:
        user = get_user_model().objects.get(username=username)
        command = RebalancePortfolio(user_id=user.pk, rebalance_id=uuid5(DEMO_NAMESPACE, f"{username}:rebalance"),
                                     targets={asset: Decimal(weight) for asset, weight in targets.items()})
        try:
            result = command_bus.dispatch(command, actor=Actor(user_id=user.pk),
                                          command_id=uuid5(DEMO_NAMESPACE, f"{username}:rebalance-command"))
        except DomainError as exc:
            stdout.write(f"Portfolio:      {username}: rebalance plan refused ({exc.code})")
            continue
        trades = len(result.data["plan"]["trades"])
        stdout.write(f"Portfolio:      {username}: rebalance {command.rebalance_id} planned ({trades} trades)")
