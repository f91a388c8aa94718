"""HTTP API of the test-only accounts context: thin views over the shared command plumbing."""
from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cqrs_core.api.commands import CommandApiView, etag
from cqrs_core.api.fields import MoneyField
from cqrs_core.api.schema import CommandResultSerializer, command_schema, problem_responses
from cqrs_core.api.serializers import CommandInputSerializer
from cqrs_core.store import read_stream

from .commands import AccountNotFound, Deposit, OpenAccount, Withdraw
from .state import ACCOUNT


class AccountResultSerializer(CommandResultSerializer):
    account_id = serializers.UUIDField(required=False)
    balance = serializers.CharField(required=False, help_text="Exact decimal, as a string.")


class AccountOpenApi(CommandApiView):
    """Open an account owned by the caller; its id is stable across retries with one Idempotency-Key."""

    success_status = 201

    class InputSerializer(CommandInputSerializer):
        currency = serializers.RegexField(r"^[A-Z]{3}$", default="USD")

    @command_schema(request=InputSerializer, response=AccountResultSerializer, status=201, errors=(409,))
    def post(self, request: Request) -> Response:
        data = self.validated_input(request)
        account_id = self.new_id(request, "account")
        return self.execute(request, OpenAccount(account_id=account_id, **data),
                            location=f"{request.path}{account_id}/")


class AccountAmountInputSerializer(CommandInputSerializer):
    amount = MoneyField()


class AccountDepositApi(CommandApiView):
    """Deposit money into one of the caller's accounts."""

    InputSerializer = AccountAmountInputSerializer

    @command_schema(request=AccountAmountInputSerializer, response=AccountResultSerializer, errors=(404,))
    def post(self, request: Request, account_id: UUID) -> Response:
        data = self.validated_input(request)
        return self.execute(request, Deposit(account_id=account_id, **data))


class AccountWithdrawApi(CommandApiView):
    """Withdraw money from one of the caller's accounts; 409 ``insufficient_funds`` beyond the balance."""

    InputSerializer = AccountAmountInputSerializer

    @command_schema(request=AccountAmountInputSerializer, response=AccountResultSerializer, errors=(404, 409))
    def post(self, request: Request, account_id: UUID) -> Response:
        data = self.validated_input(request)
        return self.execute(request, Withdraw(account_id=account_id, **data))


class AccountDetailApi(APIView):
    """One of the caller's accounts, folded from its stream (a test context needs no read model)."""

    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        account_id = serializers.UUIDField()
        owner_id = serializers.IntegerField()
        currency = serializers.CharField()
        balance = MoneyField()
        transactions = serializers.IntegerField()
        stream_version = serializers.IntegerField()
        position = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer, **problem_responses(401, 404)})
    def get(self, request: Request, account_id: UUID) -> Response:
        events = read_stream(f"bus_app.account-{account_id}")
        account = ACCOUNT.fold(events)
        user = request.user
        if account is None or (account.owner_id != user.pk and not user.is_staff):
            raise AccountNotFound(account_id=str(account_id))
        data: dict[str, Any] = {**vars(account), "stream_version": events[-1].stream_version,
                                "position": events[-1].position}
        return Response(self.OutputSerializer(data).data, headers={"ETag": etag(data["stream_version"])})
