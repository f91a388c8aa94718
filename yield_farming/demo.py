"""Demo data of yield farming: the shipped protocol catalogue, listed through commands, and one demo
user's yield strategy run by the saga (idempotent: fixed ids, a second run changes nothing)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import uuid5

from django.contrib.auth import get_user_model

from cqrs_core.bus import command_bus
from cqrs_core.commands import Actor
from cqrs_core.errors import DomainError
from portfolio.demo import DEMO_NAMESPACE

from .commands import ExecuteYieldStrategy
from .feed import SAMPLE_PROTOCOLS, load_protocols

#: (username, USD, risk tolerance) of the demo's yield strategy.
DEMO_STRATEGY = ("demo_grace", Decimal(2000), "moderate")


def load(stdout: Any) -> None:
    """``LEDGERLINE_DEMO_LOADERS`` entry, after the portfolios: protocols, then a strategy for a demo user."""
    report = load_protocols(SAMPLE_PROTOCOLS)
    stdout.write(f"Yield farming:  {report.listed} protocols listed, {report.already} already there")
    username, amount, tolerance = DEMO_STRATEGY
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        stdout.write(f"Yield farming:  no user {username}: no demo strategy")
        return
    strategy_id = uuid5(DEMO_NAMESPACE, f"{username}:yield:0")
    command = ExecuteYieldStrategy(user_id=user.pk, strategy_id=strategy_id, protocols=("any",), amount=amount,
                                   risk_tolerance=tolerance)
    try:
        result = command_bus.dispatch(command, actor=Actor(user_id=user.pk),
                                      command_id=uuid5(DEMO_NAMESPACE, f"{username}:yield-command:0"))
    except DomainError as exc:
        stdout.write(f"Yield farming:  {username}: yield strategy refused ({exc.code})")
        return
    state = "replayed" if result.replayed else "requested"
    stdout.write(f"Yield farming:  {username}: {amount} USD yield strategy {strategy_id} {state} "
                 f"(see /api/yield/strategies/{strategy_id}/)")
