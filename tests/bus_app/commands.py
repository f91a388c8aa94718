from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from cqrs_core.commands import Actor, Command, CommandContext, Decision, handles
from cqrs_core.errors import Conflict, NotFound, ValidationFailed

from .events import AccountOpened, FundsDeposited, FundsWithdrawn
from .state import ACCOUNT, Account


class AccountNotFound(NotFound):
    """The account does not exist."""

    code = "account_not_found"


class AccountAlreadyOpen(Conflict):
    """The account is already open."""

    code = "account_already_open"


class InsufficientFunds(Conflict):
    """Not enough money in the account."""

    code = "insufficient_funds"


class AmountNotPositive(ValidationFailed):
    """Amounts must be greater than zero."""

    code = "amount_not_positive"


def _stream(cmd: OpenAccount | Deposit | Withdraw) -> str:
    return f"bus_app.account-{cmd.account_id}"


def _owner_only(cmd: Deposit | Withdraw, actor: Actor) -> None:
    """Accounts are checked again by the handler: here only anonymous actors are refused."""


@dataclass(frozen=True, kw_only=True)
class OpenAccount(Command):
    account_id: UUID
    currency: str = "USD"


@dataclass(frozen=True, kw_only=True)
class Deposit(Command):
    account_id: UUID
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class Withdraw(Command):
    account_id: UUID
    amount: Decimal


@handles(OpenAccount, stream=_stream, aggregate=ACCOUNT)
def open_account(account: Account | None, cmd: OpenAccount, ctx: CommandContext) -> Decision:
    if account is not None:
        raise AccountAlreadyOpen(account_id=str(cmd.account_id))
    owner = ctx.actor.user_id or 0
    return Decision([AccountOpened(account_id=cmd.account_id, owner_id=owner, currency=cmd.currency)],
                    {"account_id": cmd.account_id})


def _existing(account: Account | None, cmd: Deposit | Withdraw, ctx: CommandContext) -> Account:
    if account is None or (not ctx.actor.is_system and not ctx.actor.is_staff and account.owner_id != ctx.actor.user_id):
        raise AccountNotFound(account_id=str(cmd.account_id))
    if cmd.amount <= 0:
        raise AmountNotPositive(amount=str(cmd.amount))
    return account


@handles(Deposit, stream=_stream, aggregate=ACCOUNT)
def deposit(account: Account | None, cmd: Deposit, ctx: CommandContext) -> Decision:
    account = _existing(account, cmd, ctx)
    return Decision([FundsDeposited(account_id=cmd.account_id, amount=cmd.amount)],
                    {"balance": account.balance + cmd.amount})


@handles(Withdraw, stream=_stream, aggregate=ACCOUNT)
def withdraw(account: Account | None, cmd: Withdraw, ctx: CommandContext) -> Decision:
    account = _existing(account, cmd, ctx)
    if cmd.amount > account.balance:
        raise InsufficientFunds(balance=str(account.balance), amount=str(cmd.amount))
    return Decision([FundsWithdrawn(account_id=cmd.account_id, amount=cmd.amount)],
                    {"balance": account.balance - cmd.amount})
