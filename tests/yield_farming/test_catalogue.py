"""The protocol catalogue: list, operator update, seeded APY drift, demo loader and beat task."""
from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from cqrs_core.commands import Actor
from cqrs_core.models import StoredEvent
from portfolio.errors import OperatorsOnly
from yield_farming import demo
from yield_farming.catalogue import (
    ApyChange, RecordApyChanges, UpdateProtocol, current_catalogue, list_protocol, record_apy_changes, update_protocol,
)
from yield_farming.errors import InvalidProtocol, ProtocolNotFound
from yield_farming.events import ProtocolApyChanged, ProtocolListed, ProtocolUpdated
from yield_farming.drift import MAX_APY, MIN_APY, drifted
from yield_farming.feed import drift, read_protocols
from yield_farming.models import Protocol
from yield_farming.tasks import drift_apys_task
from tests.conftest import FIXED_NOW, context

from .conftest import projected
from .support import catalogue_of, protocol

STAFF = Actor(user_id=9, is_staff=True)


def test_listing_adds_a_protocol_and_listing_it_again_records_nothing() -> None:
    cmd = protocol("new-e", apy="6.5")
    decision = list_protocol(None, cmd, context())
    assert [type(e) for e in decision.events] == [ProtocolListed] and decision.result["listed"] is True
    assert list_protocol(catalogue_of([cmd]), cmd, context()).events == []


@pytest.mark.parametrize(("field", "value"), [("apy", Decimal("-0.01")), ("tvl", Decimal(-1)), ("risk_score", 0),
                                              ("risk_score", 11), ("name", " ")])
def test_figures_out_of_range_are_invalid(field: str, value: object) -> None:
    import dataclasses

    with pytest.raises(InvalidProtocol):
        list_protocol(None, dataclasses.replace(protocol("bad"), **{field: value}), context())


def test_an_operator_update_records_every_figure_after_the_change() -> None:
    decision = update_protocol(catalogue_of(), UpdateProtocol(slug="mid-c", apy=Decimal("7.25"), audited=False),
                               context(actor=STAFF))
    [event] = decision.events
    assert event == ProtocolUpdated(slug="mid-c", name="Mid-C", chain="arbitrum", asset="USDC", apy=Decimal("7.25"),
                                    tvl=Decimal("80000000"), audited=False, risk_score=5, updated_by=9)
    assert update_protocol(catalogue_of(), UpdateProtocol(slug="mid-c", apy=Decimal("9")), context()).events == []


def test_updating_an_unknown_slug_is_not_found_and_out_of_range_is_invalid() -> None:
    with pytest.raises(ProtocolNotFound):
        update_protocol(catalogue_of(), UpdateProtocol(slug="nope", apy=Decimal(1)), context())
    with pytest.raises(InvalidProtocol):
        update_protocol(catalogue_of(), UpdateProtocol(slug="mid-c", risk_score=12), context())


def test_only_operators_update_the_catalogue() -> None:
    from cqrs_core.commands import handler_for

    authorize = handler_for(UpdateProtocol).authorize
    assert authorize is not None
    with pytest.raises(OperatorsOnly):
        authorize(UpdateProtocol(slug="mid-c"), Actor(user_id=1))
    authorize(UpdateProtocol(slug="mid-c"), STAFF)


def test_apy_changes_record_only_known_slugs_that_moved() -> None:
    cmd = RecordApyChanges(changes=(ApyChange(slug="safe-a", apy=Decimal("4.1")), ApyChange(slug="safe-b", apy=Decimal("3.5")),
                                    ApyChange(slug="ghost", apy=Decimal("1"))), as_of=FIXED_NOW)
    assert record_apy_changes(catalogue_of(), cmd, context()).events == [
        ProtocolApyChanged(slug="safe-a", apy=Decimal("4.1"), previous_apy=Decimal("4"), as_of=FIXED_NOW)]


def test_the_drift_is_deterministic_rounded_and_bounded() -> None:
    first = drifted(Decimal("5"), seed=3, slug="safe-a", tick=100, sigma=Decimal("0.05"))
    assert first == drifted(Decimal("5"), seed=3, slug="safe-a", tick=100, sigma=Decimal("0.05"))
    assert first != drifted(Decimal("5"), seed=3, slug="safe-a", tick=101, sigma=Decimal("0.05"))
    assert first == first.quantize(Decimal("0.01")) and Decimal("4") < first < Decimal("6")
    assert drifted(MIN_APY, seed=1, slug="x", tick=1, sigma=Decimal(5)) >= MIN_APY
    assert drifted(MAX_APY, seed=1, slug="x", tick=2, sigma=Decimal(5)) <= MAX_APY


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_a_drift_tick_moves_apys_through_commands_once_per_tick() -> None:
    demo.load(io.StringIO())
    now = dt.datetime(2026, 11, 23, 12, 0, 30, tzinfo=dt.timezone.utc)
    moved = drift(now, seed=11, interval=300, sigma=Decimal("0.02"))
    assert moved > 0 and StoredEvent.objects.filter(event_type=ProtocolApyChanged.event_type).count() == moved
    assert drift(now + dt.timedelta(seconds=60), seed=11, interval=300, sigma=Decimal("0.02")) == 0  # same tick
    catalogue = current_catalogue()
    projected()
    assert {row.slug: row.apy for row in Protocol.objects.all()} == {s: p.apy for s, p in catalogue.protocols.items()}


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_the_beat_task_drifts_only_when_the_feed_is_on(settings) -> None:  # type: ignore[no-untyped-def]
    demo.load(io.StringIO())
    settings.YIELD_SIMULATED_FEED = False
    assert drift_apys_task() == 0
    settings.YIELD_SIMULATED_FEED = True
    assert drift_apys_task() > 0


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_the_demo_loader_and_command_list_the_shipped_catalogue_once() -> None:
    out = io.StringIO()
    demo.load(out)
    call_command("load_yield_protocols", stdout=out)
    shipped = read_protocols()
    assert f"{len(shipped)} protocols listed, 0 already there" in out.getvalue()
    assert f"0 protocols listed, {len(shipped)} already there" in out.getvalue()
    projected()
    assert Protocol.objects.count() == len(shipped) >= 10
    assert {p.risk_score for p in Protocol.objects.all()} <= set(range(1, 11))


def test_the_demo_loader_is_registered_after_the_portfolio(settings) -> None:  # type: ignore[no-untyped-def]
    loaders = settings.LEDGERLINE_DEMO_LOADERS
    assert loaders.index("yield_farming.demo.load") > loaders.index("portfolio.demo.load")
    assert settings.CELERY_BEAT_SCHEDULE["yield-apy-drift"]["task"] == "yield_farming.drift_apys"


