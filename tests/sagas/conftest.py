"""Fixtures of the saga tests: funded accounts, clean fault knobs, effect counting."""
from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest

from cqrs_core.bus import command_bus
from cqrs_core.models import StoredEvent
from cqrs_core.sagas.models import SagaInstance
from tests.bus_app import sagas as test_sagas
from tests.bus_app.commands import Deposit, OpenAccount
from tests.bus_app.events import FundsDeposited, FundsWithdrawn


@pytest.fixture(autouse=True)
def knobs() -> Iterator[None]:
    """Faults and the call log start empty and are emptied again whatever the test does."""
    test_sagas.FAULTS.clear()
    test_sagas.CALLS.clear()
    try:
        yield
    finally:
        test_sagas.FAULTS.clear()
        test_sagas.CALLS.clear()


def funded_account(amount: str = "100") -> uuid.UUID:
    account = uuid.uuid4()
    command_bus.dispatch(OpenAccount(account_id=account))
    command_bus.dispatch(Deposit(account_id=account, amount=Decimal(amount)))
    return account


def balance(account: uuid.UUID) -> Decimal:
    from cqrs_core.bus import load
    from cqrs_core.commands import handler_for

    state, _ = load(handler_for(Deposit), f"bus_app.account-{account}")
    assert state is not None
    return state.balance


def transfer_data(source: uuid.UUID, target: uuid.UUID, amount: str = "30", **extra: str) -> dict[str, str]:
    return {"source": str(source), "target": str(target), "amount": amount, **extra}


def money_events(*accounts: uuid.UUID) -> Counter:
    """(account, type, amount) of every money event after the opening deposit: a duplicate shows as 2."""
    rows = StoredEvent.objects.filter(
        stream_id__in=[f"bus_app.account-{a}" for a in accounts],
        event_type__in=[FundsDeposited.event_type, FundsWithdrawn.event_type], stream_version__gt=2,
    ).values_list("stream_id", "event_type", "data")
    return Counter((stream, kind, data["amount"]) for stream, kind, data in rows)


def saga_events(saga_id: uuid.UUID) -> list[tuple[str, str]]:
    """(type, step) of the saga's stream, in order."""
    rows = StoredEvent.objects.filter(stream_id=f"saga-{saga_id}").order_by("stream_version")
    return [(r.event_type, r.data.get("step", "")) for r in rows]


def saga(saga_id: uuid.UUID) -> SagaInstance:
    return SagaInstance.objects.get(pk=saga_id)
