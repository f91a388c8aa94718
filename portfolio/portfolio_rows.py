"""The writes of ``portfolio.portfolios``: a batch's changes, folded per row, written to each row once.

On PostgreSQL the changes are applied by set-based statements whose parameters are arrays
(``unnest``): a handful of statements per batch whatever its size, the sums added by the
database (exact ``numeric``), and no read of the rows first. Elsewhere (SQLite stores money as
text, so the database cannot add it) the rows are read, changed in Python and written in bulk.
https://www.postgresql.org/docs/current/functions-array.html#ARRAY-FUNCTIONS-TABLE (``unnest``)
"""
from __future__ import annotations

import decimal
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.backends.utils import CursorWrapper

from cqrs_core.commands import MONEY_CONTEXT

from .models import Portfolio, Position

ZERO = Decimal(0)
PORTFOLIO_SUMS = ("cash", "realised_pnl", "fees_paid", "reserved", "yield_principal")
POSITION_SUMS = ("quantity", "realised_pnl")


@dataclass
class PortfolioChange:
    """What a batch does to one portfolio row: sums to add (or, once ``opened``, the whole row) and last values.

    ``must_exist``: an event came before any ``PortfolioOpened`` of the batch, so the row must already exist.
    """

    opened: bool = False
    must_exist: bool = True
    cash: Decimal = ZERO
    realised_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO
    reserved: Decimal = ZERO
    yield_principal: Decimal = ZERO
    limits_set: bool = False
    max_position_usd: Decimal | None = None
    version: int = 0
    position: int = 0


@dataclass
class PositionChange:
    """What a batch does to one position: quantity and realised P&L to add, the last average cost."""

    quantity: Decimal = ZERO
    realised_pnl: Decimal = ZERO
    average_cost: Decimal = ZERO


@dataclass
class BatchChanges:
    portfolios: dict[int, PortfolioChange] = field(default_factory=dict)
    positions: dict[tuple[int, str], PositionChange] = field(default_factory=dict)


def write_changes(changes: BatchChanges) -> None:
    """Apply the changes to the rows; ``Portfolio.DoesNotExist``, before any position is written, when one is missing."""
    if connection.vendor == "postgresql":
        _write_set_based(changes)
    else:
        _write_rows(changes)


def _missing(user_ids: Iterable[int], found: Iterable[int]) -> None:
    missing = sorted(set(user_ids) - set(found))
    if missing:
        raise Portfolio.DoesNotExist(f"no portfolio for user {missing[0]}")


# --- PostgreSQL: set-based ------------------------------------------------------------------------
_OPEN = f"""
    INSERT INTO {Portfolio._meta.db_table} (user_id, {", ".join(PORTFOLIO_SUMS)}, max_position_usd, version, position)
    SELECT * FROM unnest(%s::bigint[], {", ".join(["%s::numeric[]"] * len(PORTFOLIO_SUMS))}, %s::numeric[],
                         %s::integer[], %s::bigint[])
    ON CONFLICT (user_id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in PORTFOLIO_SUMS)},
        max_position_usd = EXCLUDED.max_position_usd, version = EXCLUDED.version, position = EXCLUDED.position
"""
_ADD = f"""
    UPDATE {Portfolio._meta.db_table} AS p SET {", ".join(f"{c} = p.{c} + d.{c}" for c in PORTFOLIO_SUMS)},
        max_position_usd = CASE WHEN d.limits_set THEN d.max_position_usd ELSE p.max_position_usd END,
        version = d.version, position = d.position
    FROM unnest(%s::bigint[], {", ".join(["%s::numeric[]"] * len(PORTFOLIO_SUMS))}, %s::boolean[], %s::numeric[],
                %s::integer[], %s::bigint[])
         AS d(user_id, {", ".join(PORTFOLIO_SUMS)}, limits_set, max_position_usd, version, position)
    WHERE p.user_id = d.user_id
    RETURNING p.user_id
"""
_EXISTING = f"SELECT user_id FROM {Portfolio._meta.db_table} WHERE user_id = ANY(%s::bigint[])"
_ADD_POSITIONS = f"""
    UPDATE {Position._meta.db_table} AS p SET quantity = p.quantity + d.quantity, average_cost = d.average_cost,
        realised_pnl = p.realised_pnl + d.realised_pnl
    FROM unnest(%s::bigint[], %s::text[], %s::numeric[], %s::numeric[], %s::numeric[])
         AS d(portfolio_id, asset, quantity, average_cost, realised_pnl)
    WHERE p.portfolio_id = d.portfolio_id AND p.asset = d.asset
    RETURNING p.portfolio_id, p.asset
"""
_NEW_POSITIONS = f"""
    INSERT INTO {Position._meta.db_table} (portfolio_id, asset, quantity, average_cost, realised_pnl)
    SELECT * FROM unnest(%s::bigint[], %s::text[], %s::numeric[], %s::numeric[], %s::numeric[])
"""


def _write_set_based(changes: BatchChanges) -> None:
    """Portfolios first (checking that each one a delta needs exists), then positions: updated, else inserted."""
    opened = {u: c for u, c in changes.portfolios.items() if c.opened}
    added = {u: c for u, c in changes.portfolios.items() if not c.opened}
    with connection.cursor() as cursor:
        required = [u for u, c in opened.items() if c.must_exist]
        if required:
            cursor.execute(_EXISTING, [_array(required)])
            _missing(required, (row[0] for row in cursor.fetchall()))
        if added:
            cursor.execute(_ADD, [_array(added), *_columns(added.values(), (*PORTFOLIO_SUMS, "limits_set",
                                                                             "max_position_usd", "version", "position"))])
            _missing(added, (row[0] for row in cursor.fetchall()))
        if opened:
            cursor.execute(_OPEN, [_array(opened), *_columns(opened.values(), (*PORTFOLIO_SUMS, "max_position_usd",
                                                                               "version", "position"))])
        if changes.positions:
            _write_positions(cursor, changes.positions)


def _write_positions(cursor: CursorWrapper, positions: dict[tuple[int, str], PositionChange]) -> None:
    keys = list(positions)
    cursor.execute(_ADD_POSITIONS, _position_params(keys, positions))
    updated = set(cursor.fetchall())
    new = [key for key in keys if key not in updated]
    if new:
        cursor.execute(_NEW_POSITIONS, _position_params(new, positions))


def _position_params(keys: list[tuple[int, str]], positions: dict[tuple[int, str], PositionChange]) -> list[str]:
    changes = [positions[key] for key in keys]
    return [_array([k[0] for k in keys]), _text_array([k[1] for k in keys]),
            *_columns(changes, ("quantity", "average_cost", "realised_pnl"))]


def _columns(rows: Iterable[object], names: Iterable[str]) -> list[str]:
    """One array literal per attribute name: the parameters of an ``unnest``."""
    rows = list(rows)
    return [_array([getattr(row, name) for row in rows]) for name in names]


def _array(values: Iterable[Decimal | int | bool | None]) -> str:
    """A PostgreSQL array literal of numbers or booleans (``{1.5,NULL,t}``), cast by the statement.

    Written here rather than adapted by psycopg, whose list dumper spends more than the statement
    on a few thousand values. https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO
    """
    return "{" + ",".join("NULL" if v is None else ("t" if v else "f") if type(v) is bool else str(v)
                          for v in values) + "}"


def _text_array(values: Iterable[str]) -> str:
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


# --- elsewhere: rows read, changed in Python, written in bulk ---------------------------------------
def _write_rows(changes: BatchChanges) -> None:
    rows = Portfolio.objects.in_bulk([u for u, c in changes.portfolios.items() if not c.opened or c.must_exist])
    _missing((u for u, c in changes.portfolios.items() if c.must_exist), rows)
    with decimal.localcontext(MONEY_CONTEXT):
        for user_id, change in changes.portfolios.items():
            row = rows[user_id] = Portfolio(user_id=user_id) if change.opened else rows[user_id]
            for name in PORTFOLIO_SUMS:
                setattr(row, name, getattr(row, name) + getattr(change, name))
            if change.opened or change.limits_set:
                row.max_position_usd = change.max_position_usd
            row.version, row.position = change.version, change.position
        Portfolio.objects.bulk_create([rows[u] for u in changes.portfolios], update_conflicts=True,
                                      unique_fields=["user_id"],
                                      update_fields=[*PORTFOLIO_SUMS, "max_position_usd", "version", "position"])
        _write_position_rows(changes.positions)


def _write_position_rows(positions: dict[tuple[int, str], PositionChange]) -> None:
    users = {user_id for user_id, _ in positions}
    existing = {(p.portfolio_id, p.asset): p for p in Position.objects.filter(portfolio_id__in=users)}
    new, changed = [], []
    for key, change in positions.items():
        row = existing.get(key)
        if row is None:
            new.append(Position(portfolio_id=key[0], asset=key[1], quantity=change.quantity,
                                average_cost=change.average_cost, realised_pnl=change.realised_pnl))
            continue
        row.quantity += change.quantity
        row.realised_pnl += change.realised_pnl
        row.average_cost = change.average_cost
        changed.append(row)
    Position.objects.bulk_create(new)
    # Existing rows keep their id: an upsert on the id is a bulk UPDATE without CASE chains.
    Position.objects.bulk_create(changed, update_conflicts=True, unique_fields=["id"],
                                 update_fields=[*POSITION_SUMS, "average_cost"])
