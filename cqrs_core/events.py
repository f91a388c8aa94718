"""Domain events: frozen dataclasses with a stable stored name and a schema version.

A class declares its stored name once, ``class TradeClosed(Event, name="trading.TradeClosed")``;
renaming the Python class never changes what is stored. Old schema versions are turned into
the current one on read by registered upcasters, so handlers only ever see current events.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar
from uuid import UUID

from .serialization import decode_dataclass, to_json

JsonDict = dict[str, Any]
Upcaster = Callable[[JsonDict], JsonDict]

_EVENT_TYPES: dict[str, type[Event]] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class UnknownEventType(LookupError):
    """No event class is registered under this stored name."""


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of all domain events. Subclasses pass ``name=`` (and ``version=`` when it changes)."""

    event_type: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1

    def __init_subclass__(cls, *, name: str | None = None, version: int = 1, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name is None:
            return
        if "." not in name:
            raise ValueError(f"event name {name!r} must be 'context.Name'")
        existing = _EVENT_TYPES.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"event name {name!r} is already used by {existing.__qualname__}")
        cls.event_type = name
        cls.schema_version = version
        _EVENT_TYPES[name] = cls

    def to_data(self) -> JsonDict:
        """The event's fields as exact JSON (Decimals as strings)."""
        return to_json(self)


def upcaster(event_type: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function turning stored data of ``from_version`` into ``from_version + 1``."""

    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(event_type, from_version)] = fn
        return fn

    return register


def event_class(event_type: str) -> type[Event]:
    """The class registered under a stored name."""
    try:
        return _EVENT_TYPES[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def decode_event(event_type: str, schema_version: int, data: JsonDict) -> Event:
    """Rebuild an event from stored data, upcasting old schema versions first."""
    cls = event_class(event_type)
    version = schema_version
    while version < cls.schema_version:
        step = _UPCASTERS.get((event_type, version))
        if step is None:
            raise LookupError(f"no upcaster for {event_type} v{version} -> v{version + 1}")
        data = step(dict(data))
        version += 1
    return decode_dataclass(cls, data)


def event_types_of(prefix: str) -> list[str]:
    """Stored names of the registered events of one context (``'trading.'``)."""
    return sorted(name for name in _EVENT_TYPES if name.startswith(prefix))


@dataclass(frozen=True, kw_only=True)
class EventMetadata:
    """Who caused an event and in answer to what."""

    event_id: UUID
    command_id: UUID | None = None
    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    actor_id: int | None = None
    extra: JsonDict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RecordedEvent:
    """An event as stored: where it sits in its stream and in the global order.

    ``event`` is decoded lazily, so readers that skip a type never pay for decoding it.
    """

    position: int
    stream_id: str
    stream_version: int
    event_type: str
    schema_version: int
    data: JsonDict
    metadata: EventMetadata
    recorded_at: dt.datetime

    @cached_property
    def event(self) -> Event:
        return decode_event(self.event_type, self.schema_version, self.data)
