"""JSON parsing that keeps money exact: numbers become ``Decimal``, never ``float``."""
from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import IO, Any, NoReturn

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser, get_encoding


class PayloadTooLarge(APIException):
    """The body is larger than ``API_MAX_BODY_BYTES``; nothing was read past the limit."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class ExactJSONParser(JSONParser):
    """``application/json`` with fractions parsed as ``Decimal`` and integers as ``int``.

    ``NaN``, ``Infinity``, ``-Infinity`` and duplicate keys are a 400 ``malformed_request``:
    Python's json accepts them, but they are not JSON and no client means them for money.
    Bodies over ``API_MAX_BODY_BYTES`` are a 413 ``payload_too_large`` (DRF reads the raw
    stream, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not guard JSON bodies).
    """

    def parse(self, stream: IO[bytes], media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        encoding = get_encoding(parser_context or {})
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            return json.loads(codecs.decode(raw, encoding), parse_float=Decimal,
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
