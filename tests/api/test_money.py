"""Money is exact from JSON to the store and back; what would need rounding is refused.

Choice: ``MoneyField`` takes up to 18 decimal places (28 digits). A JSON number within that
stays exact digit for digit (it is parsed as ``Decimal``, never as ``float``); a number beyond it,
such as the float-noise ``0.1000000000000000055511151231257827``, is a 400 and is never rounded.
"""
from __future__ import annotations

import io
from decimal import Decimal

import pytest
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.test import APIClient

from cqrs_core.api.fields import MoneyField
from cqrs_core.api.parsers import ExactJSONParser
from cqrs_core.models import StoredEvent

from .support import account_url, assert_problem, post_json, written


@pytest.mark.django_db
def test_a_json_number_with_18_places_stays_exact_end_to_end(api: APIClient, account: str) -> None:
    response = post_json(api, account_url(account, "deposit"), '{"amount": 0.100000000000000005}')

    assert response.status_code == 200, response.content
    assert response.json()["balance"] == "100.100000000000000005"
    stored = StoredEvent.objects.filter(event_type="bus_app.FundsDeposited").order_by("-position").first()
    assert stored is not None and stored.data["amount"] == "0.100000000000000005"
    assert api.get(account_url(account)).json()["balance"] == "100.100000000000000005"


@pytest.mark.django_db
@pytest.mark.parametrize(("raw", "field_error"), [
    ("0.1000000000000000055511151231257827", "Ensure that there are no more than 28 digits in total."),
    ("0.1000000000000000055", "Ensure that there are no more than 18 decimal places."),
    ("12345678901.5", "Ensure that there are no more than 10 digits before the decimal point."),
    ('"1e-19"', "Ensure that there are no more than 18 decimal places."),
])
def test_a_number_beyond_the_precision_is_refused_not_rounded(api: APIClient, account: str, raw: str,
                                                              field_error: str) -> None:
    before = written()

    response = post_json(api, account_url(account, "deposit"), f'{{"amount": {raw}}}')

    body = assert_problem(response, 400, "validation_failed")
    assert body["errors"] == {"amount": [field_error]}
    assert written() == before


@pytest.mark.django_db
@pytest.mark.parametrize(("raw", "stored"), [("7", "7"), ('"7.50"', "7.50"), ("1E+2", "100"), ('" 3.25 "', "3.25")])
def test_integers_strings_and_exponents_are_stored_exactly_in_fixed_point(api: APIClient, account: str, raw: str,
                                                             stored: str) -> None:
    response = post_json(api, account_url(account, "deposit"), f'{{"amount": {raw}}}')

    assert response.status_code == 200, response.content
    event = StoredEvent.objects.filter(event_type="bus_app.FundsDeposited").order_by("-position").first()
    assert event is not None and event.data["amount"] == stored
    assert Decimal(response.json()["balance"]) == Decimal("100.00") + Decimal(stored)


def test_the_parser_reads_fractions_as_decimal_and_integers_as_int() -> None:
    data = ExactJSONParser().parse(io.BytesIO(b'{"a": 0.1000000000000000055511151231257827, "b": [10, -2.50]}'))

    assert data == {"a": Decimal("0.1000000000000000055511151231257827"), "b": [10, Decimal("-2.50")]}
    assert type(data["b"][0]) is int and str(data["b"][1]) == "-2.50"


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'{"a": -Infinity}', b'{"a": 1, "a": 2}', b'{"a": ' + b"9" * 5000 + b"}",
                                 b"[" * 50_000, b'{"a": "\xff"}'])
def test_the_parser_refuses_what_is_not_plain_json(raw: bytes) -> None:
    with pytest.raises(ParseError):
        ExactJSONParser().parse(io.BytesIO(raw))


class _Input(serializers.Serializer):  # type: ignore[type-arg]
    amount = MoneyField()


def _amount(value: object) -> object:
    """The validated amount, or the field's error messages."""
    serializer = _Input(data={"amount": value})
    return serializer.validated_data["amount"] if serializer.is_valid() else serializer.errors["amount"]


@pytest.mark.parametrize(("value", "expected"), [
    ("1.50", Decimal("1.50")), (Decimal("0.000000000000000001"), Decimal("0.000000000000000001")), (42, Decimal(42)),
    (0.5, Decimal("0.5")), (2.25, Decimal("2.25")),
])
def test_money_field_accepts_exact_values_unchanged(value: object, expected: Decimal) -> None:
    amount = _amount(value)

    assert amount == expected
    assert str(amount) == str(expected)


@pytest.mark.parametrize(("value", "message"), [
    (0.1, "This number cannot be represented exactly; send it as a string."),
    (True, "A valid number is required."),
    ("1_000", "A valid number is required."),
    ("\u0661\u0662", "A valid number is required."),  # Arabic-Indic digits: Decimal() would take them
    ("NaN", "A valid number is required."),
    (Decimal("Infinity"), "A valid number is required."),
    (["1"], "A valid number is required."),
    ("1" * 29, "Ensure that there are no more than 28 digits in total."),
])
def test_money_field_refuses_what_it_cannot_take_exactly(value: object, message: str) -> None:
    assert _amount(value) == [message]


def test_money_field_never_rounds() -> None:
    with pytest.raises(ValueError, match="never rounds"):
        MoneyField(rounding="ROUND_HALF_UP")
    assert MoneyField().to_representation(Decimal("1.5")) == "1.5"


@pytest.mark.django_db
def test_a_balance_beyond_28_digits_is_not_rounded(api: APIClient, account: str) -> None:
    amount = '{"amount": "9000000000.000000000000000001"}'
    for _ in range(2):
        assert post_json(api, account_url(account, "deposit"), amount).status_code == 200

    assert api.get(account_url(account)).json()["balance"] == "18000000100.000000000000000002"
