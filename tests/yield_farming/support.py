"""Shared helpers of the yield farming tests: a small catalogue, rules, and decide() on the portfolio stream."""
from __future__ import annotations

import dataclasses
import decimal
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from cqrs_core.commands import MONEY_CONTEXT, Actor, CommandContext, Decision
from cqrs_core.events import Event
from portfolio.state import PORTFOLIO
from tests.conftest import context
from yield_farming.catalogue import ListProtocol
from yield_farming.events import ProtocolListed
from yield_farming.rules import YieldRules
from yield_farming.state import CATALOGUE, Catalogue

USER = Actor(user_id=1)
STRATEGY = uuid.UUID("11111111-2222-4333-8444-555555555555")


def protocol(slug: str, apy: str = "5", risk: int = 3, tvl: str = "1000000000", audited: bool = True,
             chain: str = "ethereum", asset: str = "USDC") -> ListProtocol:
    return ListProtocol(slug=slug, name=slug.title(), chain=chain, asset=asset, apy=Decimal(apy), tvl=Decimal(tvl),
                        audited=audited, risk_score=risk)


#: Safe-and-big, moderate, and a risky unaudited farm.
PROTOCOLS = (
    protocol("safe-a", apy="4", risk=2, tvl="2000000000"),
    protocol("safe-b", apy="3.5", risk=2, tvl="900000000"),
    protocol("mid-c", apy="9", risk=5, tvl="80000000", chain="arbitrum"),
    protocol("wild-d", apy="40", risk=9, tvl="2000000", audited=False, chain="base"),
)


def catalogue_of(commands: Iterable[ListProtocol] = PROTOCOLS) -> Catalogue:
    state = CATALOGUE.fold([ProtocolListed(**dataclasses.asdict(c)) for c in commands])
    assert state is not None
    return state


def yield_context(*, catalogue: Catalogue | None = None, rules: YieldRules | None = None,
                  actor: Actor = USER) -> CommandContext:
    return context(actor=actor, lookups={"catalogue": catalogue or catalogue_of(), "rules": rules or YieldRules()})


def decide(handler: Callable[..., Any], given: Iterable[Event], cmd: Any, ctx: CommandContext | None = None) -> list[Event]:
    """Given portfolio-stream events, when a command, then the events decided (as the bus runs it)."""
    with decimal.localcontext(MONEY_CONTEXT):
        state = PORTFOLIO.fold(list(given))
        decision = handler(state, cmd, ctx or yield_context())
    return list(decision.events) if isinstance(decision, Decision) else list(decision)
