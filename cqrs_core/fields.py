"""Model fields of the core: a Decimal column that stays exact on SQLite too (money is never a float)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models


class ExactDecimalField(models.DecimalField):  # type: ignore[type-arg]
    """``numeric(p, s)`` on PostgreSQL; TEXT on SQLite, whose NUMERIC affinity would store a REAL.

    SQLite converts a decimal literal in a NUMERIC column to a float and keeps 15 significant
    digits (https://www.sqlite.org/datatype3.html#type_affinity), so a volume such as
    ``123456789.123456789`` would come back rounded. As TEXT it round-trips exactly; the price is
    that SQL comparisons and sums on SQLite are textual, so callers do arithmetic in Python.
    """

    def get_internal_type(self) -> str:
        # Not "DecimalField": SQLite's backend converter for it reads floats, not our text.
        return "ExactDecimalField"

    def db_type(self, connection: Any) -> str:
        if connection.vendor == "sqlite":
            return "text"
        return f"numeric({self.max_digits}, {self.decimal_places})"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Decimal | None:
        """Read back with ``decimal_places`` places on every backend, as PostgreSQL's numeric(p, s) gives."""
        if value is None:
            return None
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-self.decimal_places), context=self.context)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        value = super().get_db_prep_value(value, connection, prepared)
        return str(value) if connection.vendor == "sqlite" and isinstance(value, Decimal) else value
