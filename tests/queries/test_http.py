"""The DRF helper: ``min_position`` parsing, the body, and the freshness headers."""
from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from django.contrib.auth import get_user_model
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from cqrs_core.api.queries import QueryViewMixin
from cqrs_core.commands import Actor
from cqrs_core.projections import pause
from tests.bus_app.queries import GetAccountBalance

from .conftest import BALANCES, deposit, open_account

pytestmark = pytest.mark.django_db(transaction=True)


class BalanceApi(QueryViewMixin, APIView):
    query_timeout = 0.2

    def get(self, request: Request, account_id: UUID) -> Response:
        return self.answer(request, GetAccountBalance(account_id=account_id))


def _get(user: Any, account: UUID, params: str = "") -> Response:
    request = APIRequestFactory().get(f"/balances/{account}{params}")
    force_authenticate(request, user=user)
    response = BalanceApi.as_view()(request, account_id=account)
    response.render()
    return response


@pytest.fixture
def alice() -> Any:
    return get_user_model().objects.create_user("alice-q", password="x")


def test_an_answer_carries_its_position_in_the_body_and_header(alice: Any) -> None:
    account = open_account(Actor(user_id=alice.pk))
    position = deposit(account, "10", Actor(user_id=alice.pk))
    response = _get(alice, account, f"?min_position={position}")
    assert response.status_code == 200
    assert response.data == {"data": {"account_id": str(account), "owner_id": alice.pk, "currency": "USD",
                                      "balance": "10.000000000000000000", "transactions": 1, "position": position},
                             "position": position, "stale": False}
    assert response["X-Read-Position"] == str(position)
    assert "X-Stale" not in response and "Retry-After" not in response


@pytest.mark.parametrize("raw", ["-1", "abc", "1.5", " 3", ""])
def test_a_min_position_that_is_not_a_non_negative_integer_is_a_400(alice: Any, raw: str) -> None:
    account = open_account(Actor(user_id=alice.pk))
    response = _get(alice, account, f"?min_position={raw}")
    assert response.status_code == 400
    assert response.data["code"] == "validation_failed" and "min_position" in response.data["errors"]


def test_a_stale_answer_is_a_200_with_the_stale_flag_and_a_retry_hint(alice: Any) -> None:
    owner = Actor(user_id=alice.pk)
    account = open_account(owner)
    pause(BALANCES)
    position = deposit(account, "10", owner)
    response = _get(alice, account, f"?min_position={position}")
    assert response.status_code == 200
    assert response.data["stale"] is True and response.data["position"] < position
    assert Decimal(response.data["data"]["balance"]) == 0
    assert response["X-Stale"] == "true" and response["Retry-After"] == "1"
    assert response["X-Read-Position"] == str(response.data["position"])


def test_someone_elses_account_is_a_404(alice: Any) -> None:
    bob = get_user_model().objects.create_user("bob-q", password="x")
    account = open_account(Actor(user_id=alice.pk))
    assert _get(bob, account).status_code == 404
