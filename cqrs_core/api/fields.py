"""Serializer fields for money: exact ``Decimal`` in, exact strings out, never rounded."""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from rest_framework import serializers

#: Default precision of money: 18 decimal places (wei) and 28 digits in all, which is also the
#: precision of Python's default decimal context, so one amount never rounds in arithmetic.
MONEY_MAX_DIGITS = 28
MONEY_DECIMAL_PLACES = 18
# Plain ASCII decimal notation; Decimal() alone would also take '1_000', 'NaN' and non-ASCII digits.
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)


class MoneyField(serializers.DecimalField):
    """A strict ``DecimalField``: strings, ints and ``Decimal`` in; a value it would have to round is a 400.

    A float is accepted only when it is exactly the decimal it prints as (``0.5``), because a
    float such as ``0.1`` has already lost the client's digits; parse JSON with
    :class:`~cqrs_core.api.parsers.ExactJSONParser` so numbers arrive as ``Decimal``. Values are
    kept as given (``"1.50"`` stays ``1.50``): no quantising, no rounding.
    """

    default_error_messages = {
        "inexact_float": "This number cannot be represented exactly; send it as a string.",
        "invalid": "A valid number is required.",
    }

    def __init__(self, *, max_digits: int = MONEY_MAX_DIGITS, decimal_places: int = MONEY_DECIMAL_PLACES,
                 **kwargs: Any) -> None:
        if kwargs.get("rounding") is not None:
            raise ValueError("MoneyField never rounds; drop rounding=")
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(max_digits=max_digits, decimal_places=decimal_places, **kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, (str, int, float, Decimal)):
            self.fail("invalid")
        if isinstance(data, float) and Decimal(data) != Decimal(repr(data)):
            self.fail("inexact_float")
        if isinstance(data, Decimal) and not data.is_finite():
            self.fail("invalid")
        if isinstance(data, str) and not _NUMBER.fullmatch(data.strip()):
            self.fail("invalid")
        value: Decimal = super().to_internal_value(data)
        return value

    def quantize(self, value: Decimal) -> Decimal:
        """Validation already refused extra places; padding would only change how it reads."""
        return value
