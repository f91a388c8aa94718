"""Exact JSON encoding of events, commands and state: dataclasses in, plain JSON out, and back.

Decimals travel as strings so no float ever touches money; decoding follows the type hints of
the target dataclass, so a value comes back as the type it left as.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import types
import typing
from decimal import Decimal
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar
from uuid import UUID

import orjson

T = TypeVar("T")


def parse_json(text: str | bytes) -> Any:
    """Parse stored JSON text (event data, metadata) as ``json.loads`` would, several times faster.

    orjson reads the same values for what this codebase stores (strings, 64-bit integers, no
    floats in money); an integer beyond 64 bits, which orjson refuses, goes to ``json``.
    https://github.com/ijl/orjson#deserialize
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def to_json(value: Any) -> Any:
    """Turn a value (dataclasses, Decimal, UUID, datetimes, enums, containers) into plain JSON."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Decimal):
        # Fixed-point, never exponent notation: str() renders a zero with 18 places as "0E-18".
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("floats are not allowed in stored data; use Decimal")
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in _fields(type(value))}
    if isinstance(value, dict):
        return {str(to_json(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def from_json(tp: Any, value: Any) -> Any:
    """Rebuild a value of type ``tp`` from what :func:`to_json` produced."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return from_json(args[0], value) if len(args) == 1 else value
    if origin is typing.Literal:
        return value
    if origin in (list, tuple, set, frozenset, dict) or origin is not None:
        return _from_json_container(tp, origin, value)
    if tp is Any or tp is object:
        return value
    if isinstance(tp, type):
        if isinstance(value, float) and tp in (Decimal, int):
            # Decimal(0.1) would keep the float's binary error, int(1.5) would truncate.
            raise TypeError(f"a float cannot be decoded as {tp.__name__}; send a string")
        if dataclasses.is_dataclass(tp):
            return decode_dataclass(tp, value)
        if issubclass(tp, enum.Enum):
            return tp(value)
        if tp is Decimal:
            return _finite_decimal(value)
        if tp is UUID:
            return value if isinstance(value, UUID) else UUID(str(value))
        if tp is dt.datetime:
            return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
        if tp is dt.date:
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
        if tp in (int, str, bool):
            return tp(value)
    return value


def _from_json_container(tp: Any, origin: Any, value: Any) -> Any:
    args = typing.get_args(tp)
    if origin is dict or (isinstance(origin, type) and issubclass(origin, typing.Mapping)):
        key_t, val_t = args or (Any, Any)
        return {from_json(key_t, k): from_json(val_t, v) for k, v in value.items()}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json(args[0], v) for v in value)
        return tuple(from_json(a, v) for a, v in zip(args, value, strict=True)) if args else tuple(value)
    item_t = args[0] if args else Any
    items = [from_json(item_t, v) for v in value]
    if origin in (set, frozenset):
        return origin(items)
    return items


def _finite_decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        raise TypeError("floats are not allowed in stored data; use Decimal")
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        raise TypeError(f"{value!r} is not a finite number")
    return number


def decode_dataclass(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from a JSON dict; unknown keys are an error, not silently dropped."""
    decoders = _decoders(cls)
    if not data.keys() <= decoders.keys():
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(set(data) - set(decoders))}")
    values = {name: decoders[name](value) for name, value in data.items()}
    if len(values) == len(decoders) and sets_fields_only(cls):
        return build_dataclass(cls, values)
    return cls(**values)


def build_dataclass(cls: type[T], values: dict[str, Any]) -> T:
    """``cls(**values)`` for a dataclass whose ``__init__`` only sets its fields, given every field.

    What the generated ``__init__`` of a frozen dataclass does is one ``object.__setattr__`` per
    field; setting the instance's ``__dict__`` at once is the same object, several times faster
    (projections build one event per stored row). Callers check :func:`sets_fields_only` first.
    """
    instance = object.__new__(cls)
    instance.__dict__.update(values)
    return instance


@lru_cache(maxsize=None)
def sets_fields_only(cls: type) -> bool:
    """Whether the dataclass's ``__init__`` does nothing but set its fields (so :func:`build_dataclass` may stand in).

    The ``__init__`` must be the one ``dataclasses`` generated (it compiles it from a string, so
    its code has no file; one written in a module has that module's file), with no
    ``__post_init__``, no ``__slots__`` and no field left out of ``__init__``.
    """
    init = getattr(getattr(cls, "__init__", None), "__code__", None)
    return (dataclasses.is_dataclass(cls) and init is not None and init.co_filename == "<string>"
            and not hasattr(cls, "__post_init__") and not hasattr(cls, "__slots__")
            and all(f.init for f in dataclasses.fields(cls)))


@lru_cache(maxsize=None)
def _decoders(cls: type) -> dict[str, Callable[[Any], Any]]:
    """One decoder per field, chosen once per class from its type hint (projections decode every event)."""
    hints = _hints(cls)
    return {f.name: _decoder(hints[f.name]) for f in _fields(cls)}


def _decoder(tp: Any) -> Callable[[Any], Any]:
    """``from_json`` specialised to ``tp``: the plain scalar types and their optionals, else ``from_json`` itself.

    A scalar decoder takes ``None`` to ``None`` itself (as ``from_json`` does): one call per field, not two.
    """
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 and args[0] in _SCALARS else tp
    scalar = _SCALARS.get(tp)
    if scalar is None:
        return lambda value: from_json(tp, value)
    return scalar


def _decode_decimal(value: Any) -> Decimal | None:
    if type(value) is str:  # what to_json writes: _finite_decimal's checks without its type tests
        number = Decimal(value)
        if number.is_finite():
            return number
        raise TypeError(f"{value!r} is not a finite number")
    return typing.cast(Decimal | None, from_json(Decimal, value))


def _decode_uuid(value: Any) -> UUID | None:
    return UUID(value) if type(value) is str else typing.cast(UUID | None, from_json(UUID, value))


def _decode_datetime(value: Any) -> dt.datetime | None:
    if type(value) is str:
        return dt.datetime.fromisoformat(value)
    return typing.cast(dt.datetime | None, from_json(dt.datetime, value))


def _decode_plain(tp: type) -> Callable[[Any], Any]:
    return lambda value: value if type(value) is tp else from_json(tp, value)


_SCALARS: dict[Any, Callable[[Any], Any]] = {
    Decimal: _decode_decimal, UUID: _decode_uuid, dt.datetime: _decode_datetime,
    int: _decode_plain(int), str: _decode_plain(str), bool: _decode_plain(bool),
}


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@lru_cache(maxsize=None)
def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(cls) if f.init)
