"""A Decimal model field that stays exact on SQLite too (money and quantities of the read models)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models


class ExactDecimalField(models.DecimalField):  # type: ignore[type-arg]
    """``numeric(p, s)`` on PostgreSQL; TEXT on SQLite, whose NUMERIC affinity would store a REAL.

    SQLite keeps 15 significant digits of a decimal in a NUMERIC column
    (https://www.sqlite.org/datatype3.html#type_affinity); an average cost such as
    ``50024.937655860349127182`` came back as ``50024.9376558603``. As TEXT it round-trips
    exactly; SQL comparisons and sums of these columns on SQLite are textual, so do arithmetic in Python.
    The market context carries the same field (market.fields); it belongs in cqrs_core.
    """

    def get_internal_type(self) -> str:
        # Not "DecimalField": SQLite's backend converter for it reads floats, not text.
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
