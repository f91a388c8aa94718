"""Commands and their handlers: dataclasses decided by pure functions.

A handler is ``(state, command, ctx) -> list[Event] | Decision`` and does no I/O: the bus gives
it the folded state of its stream, the time, new ids and any read-only lookups it declared.
"""
from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID, uuid4

from .events import Event, RecordedEvent
from .serialization import decode_dataclass, to_json

S = TypeVar("S")

#: Arithmetic of handlers and folds: wide enough that sums of the API's largest amounts
#: (28 digits) stay exact, where Python's default 28-digit context would round silently.
MONEY_CONTEXT = decimal.Context(
    prec=60, rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
C = TypeVar("C", bound="Command")


@dataclass(frozen=True, kw_only=True)
class Command:
    """Base of all commands. Subclasses may pass ``name=`` to fix their stored name."""

    command_type: ClassVar[str] = ""

    def __init_subclass__(cls, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.command_type = name or f"{cls.__module__.split('.')[0]}.{cls.__name__}"

    def to_data(self) -> dict[str, Any]:
        return to_json(self)

    def fingerprint(self) -> str:
        """A digest of the command's type and fields: the same request gives the same digest."""
        body = json.dumps([self.command_type, self.to_data()], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Aggregate(Generic[S]):
    """How one kind of stream folds into state: ``evolve(state | None, event) -> state``.

    ``snapshot_version`` changes whenever ``state_type`` changes shape; older snapshots are
    then ignored and the stream is folded from its start.
    """

    name: str
    evolve: Callable[[S | None, Event], S | None]
    state_type: type[S]
    snapshot_version: int = 1

    def fold(self, events: Iterable[Event | RecordedEvent], state: S | None = None) -> S | None:
        with decimal.localcontext(MONEY_CONTEXT):
            for item in events:
                state = self.evolve(state, item.event if isinstance(item, RecordedEvent) else item)
        return state


#: Celery priority of the default line of work: projection wake-ups, saga steps, queued commands.
#: Sharing it, they are served in the order they were queued and take turns (``wakeups.wake_again``).
DEFAULT_PRIORITY = 5


@dataclass(frozen=True, kw_only=True)
class ResourceRequirements:
    """What a command's work needs when it runs on a worker: Celery queue, priority, time limit."""

    queue: str | None = None  # None: Celery's default queue, which every worker consumes
    priority: int = DEFAULT_PRIORITY
    time_limit: float = 60.0
    soft_time_limit: float | None = None

    def celery_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"priority": self.priority, "time_limit": self.time_limit}
        if self.queue is not None:
            options["queue"] = self.queue
        if self.soft_time_limit is not None:
            options["soft_time_limit"] = self.soft_time_limit
        return options


@dataclass(frozen=True)
class Decision:
    """A handler's answer when it has more to say than its events: result data for the caller."""

    events: Sequence[Event]
    result: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who sends a command: a user id (None for the system itself) and whether they are staff."""

    user_id: int | None = None
    is_staff: bool = False

    @property
    def is_system(self) -> bool:
        return self.user_id is None


SYSTEM = Actor()


@dataclass(frozen=True, kw_only=True)
class CommandContext:
    """Everything a handler may know besides state and command: time, ids, actor, lookups."""

    now: dt.datetime
    actor: Actor = SYSTEM
    command_id: UUID = field(default_factory=uuid4)
    correlation_id: UUID = field(default_factory=uuid4)
    causation_id: UUID | None = None
    lookups: Mapping[str, Any] = field(default_factory=dict)
    id_factory: Callable[[], UUID] = uuid4

    def new_id(self) -> UUID:
        return self.id_factory()


Handler = Callable[[Any, Any, CommandContext], "Sequence[Event] | Decision"]
Lookup = Callable[[Any], Any]
Authorizer = Callable[[Any, Actor], None]


@dataclass(frozen=True)
class HandlerSpec:
    """A registered handler and what the bus needs to run it."""

    command_type: type[Command]
    handler: Handler
    stream: Callable[[Any], str]
    aggregate: Aggregate[Any] | None
    lookups: Mapping[str, Lookup]
    authorize: Authorizer | None
    resources: ResourceRequirements


_HANDLERS: dict[type[Command], HandlerSpec] = {}
_BY_NAME: dict[str, type[Command]] = {}


def handles(
    command_type: type[C],
    *,
    stream: Callable[[C], str],
    aggregate: Aggregate[Any] | None = None,
    lookups: Mapping[str, Callable[[C], Any]] | None = None,
    authorize: Callable[[C, Actor], None] | None = None,
    resources: ResourceRequirements | None = None,
) -> Callable[[Handler], Handler]:
    """Register the pure handler of a command type.

    ``stream`` names the stream the command decides on; ``aggregate`` folds it (omit for
    stateless commands); ``lookups`` are read-only functions of the command run before the
    handler, their values given as ``ctx.lookups``; ``authorize`` raises to refuse an actor.
    """

    def register(fn: Handler) -> Handler:
        if command_type in _HANDLERS:
            raise ValueError(f"{command_type.__name__} already has a handler")
        taken = _BY_NAME.get(command_type.command_type)
        if taken is not None and taken is not command_type:
            raise ValueError(f"command name {command_type.command_type!r} is already used by {taken.__qualname__}")
        _HANDLERS[command_type] = HandlerSpec(
            command_type, fn, stream, aggregate, dict(lookups or {}), authorize, resources or ResourceRequirements()
        )
        _BY_NAME[command_type.command_type] = command_type
        return fn

    return register


def handler_for(command: Command | type[Command]) -> HandlerSpec:
    key = command if isinstance(command, type) else type(command)
    try:
        return _HANDLERS[key]
    except KeyError:
        raise LookupError(f"no handler registered for {key.__name__}") from None


def command_from_data(command_type: str, data: dict[str, Any]) -> Command:
    """Rebuild a command sent to a worker as ``(command_type, data)``."""
    return decode_dataclass(_BY_NAME[command_type], data)
