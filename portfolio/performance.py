"""The inputs of :mod:`portfolio.analytics`: the portfolio's events and the market's hourly closes.

The moves come from the event store (``portfolio-<user_id>``), so the history is exact whatever
the read models keep; prices come from ``market.queries.hourly_closes`` (the market's public
function). Only the last ``PORTFOLIO_PERFORMANCE_MAX_DAYS`` are analysed, which bounds the work.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from cqrs_core.store import read_stream

from . import analytics
from .market import pair_of
from .state import portfolio_stream

#: Closes fetched before the analysed span, so its first instants have a price to carry forward.
PRICE_LEAD = dt.timedelta(days=2)


@dataclass(frozen=True)
class Inputs:
    moves: list[analytics.Move]
    prices: dict[str, list[tuple[dt.datetime, Any]]]
    since: dt.datetime


def inputs(user_id: int, as_of: dt.datetime) -> Inputs:
    """The user's moves and the hourly closes of every asset they ever traded."""
    from market.queries import hourly_closes

    moves = analytics.moves_from(read_stream(portfolio_stream(user_id)))
    since = as_of - dt.timedelta(days=settings.PORTFOLIO_PERFORMANCE_MAX_DAYS)
    assets = sorted({m.asset for m in moves if m.asset is not None})
    first = max(moves[0].at, since) if moves else since
    closes = hourly_closes([pair_of(a) for a in assets], since=first - PRICE_LEAD, until=as_of)
    return Inputs(moves, {a: closes.get(pair_of(a), []) for a in assets}, since)


def points(user_id: int, as_of: dt.datetime) -> list[analytics.Point]:
    data = inputs(user_id, as_of)
    return analytics.value_history(data.moves, data.prices, as_of, since=data.since)


def performance_of(user_id: int, as_of: dt.datetime) -> dict[str, Any]:
    """Returns, volatility and maximum drawdown of the user's portfolio up to ``as_of``."""
    return analytics.performance(points(user_id, as_of), as_of)


def extras_of(user_id: int, as_of: dt.datetime, include: tuple[str, ...]) -> dict[str, Any]:
    """``metrics`` and/or ``history`` (bounded by ``PORTFOLIO_HISTORY_MAX_POINTS``) for ``GetPortfolio``."""
    found = points(user_id, as_of)
    extras: dict[str, Any] = {}
    if "metrics" in include:
        extras["metrics"] = analytics.performance(found, as_of)
    if "history" in include:
        extras["history"] = analytics.history(found, settings.PORTFOLIO_HISTORY_MAX_POINTS)
    return extras
