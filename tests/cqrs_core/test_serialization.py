"""Exact JSON: Decimals survive to the database and back; floats and unknown fields are refused."""
from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import pytest

from cqrs_core.events import decode_event
from cqrs_core.serialization import decode_dataclass, from_json, parse_json, sets_fields_only, to_json
from cqrs_core.store import append, read_stream
from tests.bus_app.commands import Deposit
from tests.bus_app.events import FundsDeposited
from tests.factories import DepositFactory, FundsDepositedFactory

BEYOND_FLOAT = Decimal("0.1000000000000000055511151231257827")


def test_decimal_survives_a_json_round_trip_exactly() -> None:
    event = FundsDepositedFactory(amount=BEYOND_FLOAT)
    data = json.loads(json.dumps(event.to_data()))
    assert data["amount"] == "0.1000000000000000055511151231257827"
    decoded = decode_event(event.event_type, event.schema_version, data)
    assert decoded == event
    assert decoded.amount.as_tuple() == BEYOND_FLOAT.as_tuple()


@pytest.mark.django_db
def test_decimal_survives_the_event_store_exactly() -> None:
    event = FundsDepositedFactory(amount=BEYOND_FLOAT)
    append("money-1", [event], expected_version=0)
    assert read_stream("money-1")[0].event.amount.as_tuple() == BEYOND_FLOAT.as_tuple()


def test_floats_are_refused_when_encoding() -> None:
    with pytest.raises(TypeError, match="float"):
        to_json(FundsDeposited(account_id=FundsDepositedFactory().account_id, amount=0.1))  # type: ignore[arg-type]


def test_floats_are_refused_when_decoding_a_decimal() -> None:
    with pytest.raises(TypeError, match="float"):
        from_json(Decimal, 0.1)


def test_floats_are_refused_when_decoding_an_int() -> None:
    with pytest.raises(TypeError, match="float"):
        from_json(int, 1.5)


def test_unknown_fields_are_refused() -> None:
    data = DepositFactory().to_data()
    with pytest.raises(TypeError, match="no field"):
        decode_dataclass(Deposit, {**data, "note": "x"})


def test_a_command_round_trips_through_its_data() -> None:
    command = DepositFactory(amount=BEYOND_FLOAT)
    assert decode_dataclass(Deposit, json.loads(json.dumps(command.to_data()))) == command


def test_decimals_are_written_in_fixed_point_never_exponent_notation() -> None:
    from cqrs_core.serialization import to_json

    assert to_json(Decimal("0E-18")) == "0.000000000000000000"
    assert to_json(Decimal("1E+2")) == "100"
    assert Decimal(to_json(Decimal("-1.2345E-7"))) == Decimal("-1.2345E-7")


def test_parse_json_reads_what_json_reads_and_integers_beyond_64_bits() -> None:
    text = json.dumps({"amount": "0.000000000000000001", "user_id": 7, "tags": ["ç", None, True], "big": 2**70,
                       "nested": {"x": [1, 2]}})
    assert parse_json(text) == json.loads(text)
    assert parse_json(text.encode())["big"] == 2**70


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Plain:
    amount: Decimal
    note: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Checked:
    amount: Decimal

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError("negative")


def test_decoding_with_every_field_builds_the_same_frozen_object_as_its_init() -> None:
    decoded = decode_dataclass(_Plain, {"amount": "1.50", "note": "x"})
    assert decoded == _Plain(amount=Decimal("1.50"), note="x") and type(decoded) is _Plain
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.note = "y"  # type: ignore[misc]
    assert decode_dataclass(_Plain, {"amount": "2"}) == _Plain(amount=Decimal(2))  # a default: through __init__


def test_decoding_still_runs_post_init_and_custom_init() -> None:
    with pytest.raises(ValueError, match="negative"):
        decode_dataclass(_Checked, {"amount": "-1"})
    assert not sets_fields_only(_Checked) and sets_fields_only(_Plain)

    @dataclasses.dataclass(frozen=True)
    class Doubled:
        amount: Decimal

        def __init__(self, amount: Decimal) -> None:
            object.__setattr__(self, "amount", amount * 2)

    assert not sets_fields_only(Doubled)
    assert decode_dataclass(Doubled, {"amount": "2"}).amount == Decimal(4)
