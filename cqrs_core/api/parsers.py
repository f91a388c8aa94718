"""JSON parsing that keeps money exact: numbers become ``Decimal``, never ``float``."""
from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import IO, Any, NoReturn

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding


class ExactJSONParser(JSONParser):
    """``application/json`` with fractions parsed as ``Decimal`` and integers as ``int``.

    ``NaN``, ``Infinity``, ``-Infinity`` and duplicate keys are a 400 ``malformed_request``:
    Python's json accepts them, but they are not JSON and no client means them for money.
    """

    def parse(self, stream: IO[bytes], media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        encoding = get_encoding(parser_context or {})
        try:
            return json.load(codecs.getreader(encoding)(stream), parse_float=Decimal,
                             parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise ParseError(f"JSON parse error - {exc}") from exc


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a valid JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result
