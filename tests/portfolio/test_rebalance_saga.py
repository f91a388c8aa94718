"""RebalanceSaga in one process (Celery eager): trades in order at the latest price, reversals exactly once."""
from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from cqrs_core.bus import CommandResult, command_bus
from cqrs_core.commands import Actor, Command
from cqrs_core.projections import get_projection
from cqrs_core.sagas import RetryPolicy, retry_saga, sweep_sagas
from cqrs_core.sagas.engine import saga_id_for_event, start_sagas_for_events
from cqrs_core.sagas.models import SagaInstance
from cqrs_core.store import iter_all, read_stream
from cqrs_core.tasks import saga_step
from portfolio import rebalance_saga
from portfolio.commands import DepositFunds, ExecuteRebalance, RebalancePortfolio, WithdrawFunds
from portfolio.errors import MarketUnavailable
from portfolio.models import Rebalance
from portfolio.rebalance_saga import RebalanceSaga
from portfolio.state import PORTFOLIO, portfolio_stream
from tests.portfolio.support import ExecuteTradeFactory
from trading.errors import PriceOutOfRange
from trading.events import TradeExecuted

pytestmark = pytest.mark.django_db
Status = SagaInstance.Status
_user_ids = itertools.count(5000)


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: not an ``Exception``, so the driver records nothing after it."""


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The saga's own policies without the waits between tries."""
    steps = [dataclasses.replace(s, retry=dataclasses.replace(s.retry, backoff=0.0),
                                 compensate_retry=RetryPolicy(max_retries=1, backoff=0.0))
             for s in RebalanceSaga.steps]
    monkeypatch.setattr(RebalanceSaga, "steps", steps)


@dataclasses.dataclass
class Owner:
    user_id: int

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id)

    def send(self, command: Command, capture: Any = None) -> CommandResult:
        return command_bus.dispatch(command, actor=self.actor)

    def rebalance(self, targets: dict[str, str], *, execute: bool = False) -> CommandResult:
        return self.send(RebalancePortfolio(user_id=self.user_id, rebalance_id=uuid.uuid4(), execute=execute,
                                            targets={a: Decimal(w) for a, w in targets.items()}))

    def trades(self) -> Counter:
        """(client trade id, side, pair) of every trade of the portfolio: a duplicate shows as 2."""
        return Counter((r.event.client_trade_id, r.event.side, r.event.pair)
                       for r in read_stream(portfolio_stream(self.user_id)) if isinstance(r.event, TradeExecuted))

    def holdings(self) -> dict[str, Decimal]:
        state = PORTFOLIO.fold(read_stream(portfolio_stream(self.user_id)))
        assert state is not None
        return {a: h.quantity for a, h in state.holdings.items() if h.quantity}

    def cash(self) -> Decimal:
        state = PORTFOLIO.fold(read_stream(portfolio_stream(self.user_id)))
        assert state is not None
        return state.cash


@pytest.fixture
def owner() -> Owner:
    """10 000 USD cash and 0.1 BTC (5 000 USD at the fixed market)."""
    user = Owner(next(_user_ids))
    user.send(DepositFunds(user_id=user.user_id, amount=Decimal("15005")))
    user.send(ExecuteTradeFactory(user_id=user.user_id, amount=Decimal("0.1")))
    return user


def started(result: CommandResult, capture: Callable[..., Any]) -> uuid.UUID:
    """Deliver the command's events to the saga hook as the bus does after commit; the saga's id."""
    with capture(execute=True):
        start_sagas_for_events(result.events)
    event = next(r for r in result.events if r.event_type == "portfolio.RebalanceExecutionStarted")
    return saga_id_for_event(RebalanceSaga, event)


def saga(saga_id: uuid.UUID) -> SagaInstance:
    return SagaInstance.objects.get(pk=saga_id)


def saga_events(saga_id: uuid.UUID) -> list[tuple[str, str]]:
    return [(r.event_type, r.data.get("step", "")) for r in read_stream(f"saga-{saga_id}")]


def read_model(rebalance_id: str) -> Rebalance:
    """The row the projection makes of this test's events (applied in order: rolled-back tests leave holes in the
    PostgreSQL positions, which the gap-free runner only passes once this test's own transaction ends)."""
    proj = get_projection("portfolio.rebalances")
    proj.reset()
    for recorded in iter_all():
        if recorded.event_type in proj.event_types:
            proj.apply(recorded.event, recorded)
    return Rebalance.objects.get(pk=rebalance_id)


def test_a_rebalance_executes_sells_then_buys_once_each_and_completes(
        owner: Owner, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    result = owner.rebalance({"ETH": "50", "SOL": "20", "USD": "30"}, execute=True)
    rebalance_id = result.data["rebalance_id"]
    saga_id = started(result, django_capture_on_commit_callbacks)

    row = saga(saga_id)
    assert row.status == Status.COMPLETED and row.reason == ""
    assert owner.trades() == Counter({
        (None, "buy", "BTC/USD"): 1,
        (f"rb:{rebalance_id}:0", "sell", "BTC/USD"): 1,
        (f"rb:{rebalance_id}:1", "buy", "ETH/USD"): 1,
        (f"rb:{rebalance_id}:2", "buy", "SOL/USD"): 1,
    })
    held = owner.holdings()
    assert set(held) == {"ETH", "SOL"} and held["ETH"] == 3  # 50% of 15 000 at 2 500
    assert [e for e in saga_events(saga_id)] == [
        ("saga.SagaStarted", ""), ("saga.StepCompleted", "sells"), ("saga.StepCompleted", "buys"),
        ("saga.StepCompleted", "settle"), ("saga.SagaCompleted", "")]

    view = read_model(rebalance_id)
    assert (view.status, view.saga_id, view.trade_count) == ("completed", saga_id, 3)
    kinds = list(view.timeline.values_list("kind", "trade_index", "side"))
    assert kinds == [("execution_started", None, ""), ("trade", 0, "sell"), ("step_completed", None, ""),
                     ("trade", 1, "buy"), ("trade", 2, "buy"), ("step_completed", None, ""),
                     ("step_completed", None, ""), ("completed", None, "")]


def test_trades_execute_at_the_price_of_execution_time_with_the_plans_amounts(
        owner: Owner, fixed_market: dict[str, Decimal], django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    planned = owner.rebalance({"BTC": "0", "ETH": "50", "USD": "50"})
    plan_trades = planned.data["plan"]["trades"]
    fixed_market["BTC/USD"] = Decimal("51000")
    fixed_market["ETH/USD"] = Decimal("2450")
    result = owner.send(ExecuteRebalance(user_id=owner.user_id, rebalance_id=planned.data["rebalance_id"]))
    assert saga(started(result, django_capture_on_commit_callbacks)).status == Status.COMPLETED

    trades = [r.event for r in read_stream(portfolio_stream(owner.user_id))
              if isinstance(r.event, TradeExecuted) and r.event.client_trade_id]
    assert [(t.pair, t.price, str(t.amount)) for t in trades] == [
        ("BTC/USD", Decimal("51000"), plan_trades[0]["amount"]), ("ETH/USD", Decimal("2450"), plan_trades[1]["amount"])]


def test_a_buy_failing_for_good_reverses_every_trade_made_once_and_ends_compensated(
        owner: Owner, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    planned = owner.rebalance({"ETH": "50", "SOL": "50"})  # sell the BTC, buy ETH then SOL with all the cash
    rebalance_id = planned.data["rebalance_id"]
    owner.send(WithdrawFunds(user_id=owner.user_id, amount=Decimal("5000")))  # now the SOL buy cannot be paid
    result = owner.send(ExecuteRebalance(user_id=owner.user_id, rebalance_id=rebalance_id))
    saga_id = started(result, django_capture_on_commit_callbacks)

    row = saga(saga_id)
    assert row.status == Status.COMPENSATED
    assert "buy #2 SOL/USD failed: insufficient_funds" in row.reason
    assert row.compensated == ["buys", "sells"]
    assert owner.trades() == Counter({
        (None, "buy", "BTC/USD"): 1,
        (f"rb:{rebalance_id}:0", "sell", "BTC/USD"): 1, (f"rb:{rebalance_id}:1", "buy", "ETH/USD"): 1,
        (f"rb:{rebalance_id}:1:undo", "sell", "ETH/USD"): 1, (f"rb:{rebalance_id}:0:undo", "buy", "BTC/USD"): 1,
    })
    assert owner.holdings() == {"BTC": Decimal("0.1")}
    assert Counter(k for k, _ in saga_events(saga_id))["saga.CompensationCompleted"] == 2

    view = read_model(rebalance_id)
    assert view.status == "compensated" and "insufficient_funds" in view.reason
    reversals = list(view.timeline.filter(kind="reversal").values_list("trade_index", "side", "pair"))
    assert reversals == [(1, "sell", "ETH/USD"), (0, "buy", "BTC/USD")]


def test_a_sell_failing_for_good_reverses_the_sells_made_and_never_buys(
        owner: Owner, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    owner.send(ExecuteTradeFactory(user_id=owner.user_id, pair="SOL/USD", amount=Decimal("20"), price=Decimal("100")))
    planned = owner.rebalance({"ETH": "100"})  # sell BTC, sell SOL, buy ETH
    rebalance_id = planned.data["rebalance_id"]
    owner.send(ExecuteTradeFactory(user_id=owner.user_id, pair="SOL/USD", side="sell", amount=Decimal("20"),
                                   price=Decimal("100")))  # the SOL is gone before the plan runs
    saga_id = started(owner.send(ExecuteRebalance(user_id=owner.user_id, rebalance_id=rebalance_id)),
                      django_capture_on_commit_callbacks)

    row = saga(saga_id)
    assert row.status == Status.COMPENSATED and "sell #1 SOL/USD failed: insufficient_position" in row.reason
    assert row.compensated == ["sells"]
    mine = {key: n for key, n in owner.trades().items() if key[0]}
    assert mine == {(f"rb:{rebalance_id}:0", "sell", "BTC/USD"): 1, (f"rb:{rebalance_id}:0:undo", "buy", "BTC/USD"): 1}


@pytest.mark.parametrize("error", [MarketUnavailable(pair="SOL/USD"),
                                   PriceOutOfRange(pair="SOL/USD", price="1", market_price="2", band="0.05")])
def test_an_error_that_may_pass_retries_the_step_without_trading_twice(
        owner: Owner, error: Exception, monkeypatch: pytest.MonkeyPatch,
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    monkeypatch.setattr(rebalance_saga, "_latest_price", failing_once(rebalance_saga._latest_price, "SOL/USD", error))
    result = owner.rebalance({"ETH": "50", "SOL": "20", "USD": "30"}, execute=True)
    saga_id = started(result, django_capture_on_commit_callbacks)

    row = saga(saga_id)
    assert row.status == Status.COMPLETED and row.attempts["buys"] == 2
    assert set(owner.trades().values()) == {1} and len(owner.trades()) == 4
    assert Counter(saga_events(saga_id))[("saga.StepFailed", "buys")] == 1


def test_a_price_that_stays_out_of_the_band_fails_for_good_after_the_retries(
        owner: Owner, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    error = PriceOutOfRange(pair="SOL/USD", price="1", market_price="2", band="0.05")
    monkeypatch.setattr(rebalance_saga, "_latest_price", failing_once(rebalance_saga._latest_price, "SOL/USD", error,
                                                                      times=100))
    result = owner.rebalance({"ETH": "50", "SOL": "20", "USD": "30"}, execute=True)
    saga_id = started(result, django_capture_on_commit_callbacks)

    row = saga(saga_id)
    assert row.status == Status.COMPENSATED and "price_out_of_range" in row.reason
    assert row.attempts["buys"] == RebalanceSaga.steps[1].retry.max_retries + 1
    assert set(owner.trades().values()) == {1} and owner.holdings() == {"BTC": Decimal("0.1")}


def failing_once(real: Callable[[str], Decimal], pair: str, error: Exception, times: int = 1,
                 skip: int = 0) -> Callable[[str], Decimal]:
    """``real``, except that after ``skip`` good answers for ``pair`` the next ``times`` raise ``error``."""
    left = [skip, times]

    def price(asked: str) -> Decimal:
        if asked == pair and left[0] > 0:
            left[0] -= 1
        elif asked == pair and left[1] > 0:
            left[1] -= 1
            raise error
        return real(asked)

    return price


def test_a_reversal_that_gives_up_leaves_the_rebalance_failed_until_an_operator_retries_it(
        owner: Owner, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    planned = owner.rebalance({"ETH": "50", "SOL": "50"})
    rebalance_id = planned.data["rebalance_id"]
    owner.send(WithdrawFunds(user_id=owner.user_id, amount=Decimal("5000")))  # the SOL buy will fail for good
    # The BTC sell gets its price; buying the BTC back does not, on either try of the compensation.
    monkeypatch.setattr(rebalance_saga, "_latest_price", failing_once(
        rebalance_saga._latest_price, "BTC/USD", MarketUnavailable(pair="BTC/USD"), times=2, skip=1))
    saga_id = started(owner.send(ExecuteRebalance(user_id=owner.user_id, rebalance_id=rebalance_id)),
                      django_capture_on_commit_callbacks)

    assert saga(saga_id).status == Status.FAILED and saga(saga_id).compensated == ["buys"]
    assert owner.holdings() == {}  # the ETH was sold back; the BTC is not bought back yet
    view = read_model(rebalance_id)
    assert view.status == "failed" and view.reason.startswith("compensate:sells: MarketUnavailable")

    with django_capture_on_commit_callbacks(execute=True):
        retry_saga(saga_id, by="ops@example.com")
    assert saga(saga_id).status == Status.COMPENSATED and owner.holdings() == {"BTC": Decimal("0.1")}
    assert set(owner.trades().values()) == {1}
    view = read_model(rebalance_id)
    assert view.status == "compensated"
    assert list(view.timeline.filter(kind="operator_action").values_list("detail", flat=True)) == [
        "retry by ops@example.com"]


def die_after_the_first_trade_of(pair: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first command for ``pair`` commits, then the worker "dies" (nothing after it is recorded)."""
    real_dispatch = command_bus.dispatch
    kills = [1]

    def dispatch_then_die(command: Command, **kwargs: Any) -> CommandResult:
        result = real_dispatch(command, **kwargs)
        if getattr(command, "pair", "") == pair and kills[0]:
            kills[0] -= 1
            raise WorkerKilled()
        return result

    monkeypatch.setattr(command_bus, "dispatch", dispatch_then_die)


def test_a_worker_killed_after_a_trade_is_finished_by_the_sweep_without_trading_twice(
        owner: Owner, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    die_after_the_first_trade_of("ETH/USD", monkeypatch)  # its completion is never recorded
    result = owner.rebalance({"ETH": "50", "SOL": "20", "USD": "30"}, execute=True)
    with pytest.raises(WorkerKilled):
        started(result, django_capture_on_commit_callbacks)
    saga_id = SagaInstance.objects.get(saga_type=RebalanceSaga.saga_type).pk
    assert saga(saga_id).lease_owner and "buys" not in saga(saga_id).results

    past = timezone.now() - dt.timedelta(seconds=1)
    SagaInstance.objects.filter(pk=saga_id).update(deadline_at=past, lease_expires_at=past)
    sweep_sagas()
    sweep_sagas()

    row = saga(saga_id)
    assert row.status == Status.COMPLETED and row.attempts["buys"] == 2
    assert set(owner.trades().values()) == {1} and len(owner.trades()) == 4


def test_a_step_that_dies_by_timeout_on_its_last_attempt_has_its_trades_reversed_too(
        owner: Owner, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    """The engine compensates completed steps only; the sells' compensation finds the buys' partial trades."""
    steps = [s if s.name != "buys" else dataclasses.replace(s, retry=dataclasses.replace(s.retry, max_retries=0))
             for s in RebalanceSaga.steps]
    monkeypatch.setattr(RebalanceSaga, "steps", steps)
    die_after_the_first_trade_of("ETH/USD", monkeypatch)  # with the step's only attempt
    held_before = owner.holdings()
    result = owner.rebalance({"ETH": "50", "SOL": "20", "USD": "30"}, execute=True)
    with pytest.raises(WorkerKilled):
        started(result, django_capture_on_commit_callbacks)
    saga_id = SagaInstance.objects.get(saga_type=RebalanceSaga.saga_type).pk

    past = timezone.now() - dt.timedelta(seconds=1)
    SagaInstance.objects.filter(pk=saga_id).update(deadline_at=past, lease_expires_at=past)
    for _ in range(3):
        sweep_sagas()

    row = saga(saga_id)
    assert row.status == Status.COMPENSATED and row.compensated == ["sells"], (row.status, row.compensated)
    trades = owner.trades()
    assert set(trades.values()) == {1}, trades  # every trade and every reversal exactly once
    made = {(side, pair) for (client_id, side, pair) in trades if client_id and not client_id.endswith(":undo")}
    undone = {(side, pair) for (client_id, side, pair) in trades if client_id and client_id.endswith(":undo")}
    assert ("buy", "ETH/USD") in made and ("buy", "SOL/USD") not in made
    assert undone == {("sell", "ETH/USD"), ("buy", "BTC/USD")}
    assert owner.holdings() == held_before


def test_duplicate_deliveries_after_the_end_change_nothing(
        owner: Owner, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    result = owner.rebalance({"ETH": "50", "USD": "50"}, execute=True)
    saga_id = started(result, django_capture_on_commit_callbacks)
    trades, history = owner.trades(), saga_events(saga_id)

    assert started(result, django_capture_on_commit_callbacks) == saga_id  # the event delivered again
    saga_step.apply(args=[str(saga_id)])  # a redelivered step message
    assert SagaInstance.objects.filter(saga_type=RebalanceSaga.saga_type).count() == 1
    assert (owner.trades(), saga_events(saga_id)) == (trades, history)


def test_client_trade_ids_round_trip() -> None:
    rid = uuid.uuid4()
    assert rebalance_saga.parse_client_trade_id(rebalance_saga.client_trade_id(rid, 3)) == (rid, 3, False)
    assert rebalance_saga.parse_client_trade_id(rebalance_saga.client_trade_id(rid, 0, reversal=True)) == (rid, 0, True)
    for other in (None, "", "rb:x:1", f"rb:{rid}:x", f"rb:{rid}:1:redo", "mine", f"xx:{rid}:1"):
        assert rebalance_saga.parse_client_trade_id(other) is None
    assert len(rebalance_saga.client_trade_id(rid, 999, reversal=True)) <= 64
