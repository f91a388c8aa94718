"""ExecuteTrade, given portfolio events -> when a trade -> then events or a stable error; no database."""
from __future__ import annotations

import dataclasses
import uuid
from decimal import Decimal

import pytest

from portfolio.errors import AmountNotPositive, InsufficientFunds, MarketUnavailable
from portfolio.events import FundsReserved, PortfolioImpacted, RiskLimitsSet
from portfolio.market import MarketSnapshot
from portfolio.state import Holding
from tests.conftest import FIXED_NOW
from tests.portfolio.support import MARKET, RULES, ExecuteTradeFactory, decide, fold, funded, trade_context
from trading.commands import execute_trade
from trading.errors import (
    AmountTooSmall, DuplicateClientTradeId, InsufficientPosition, PositionLimitExceeded, PriceOutOfRange, UnknownPair,
)
from trading.events import TradeExecuted


def bought(cash: str = "100000", amount: str = "1", price: str = "50000") -> list:
    """A funded portfolio holding ``amount`` BTC bought at ``price``."""
    given = funded(cash)
    return [*given, *decide(execute_trade, given, ExecuteTradeFactory(amount=Decimal(amount), price=Decimal(price)))]


def test_a_buy_records_notional_fee_and_average_cost() -> None:
    cmd = ExecuteTradeFactory(amount=Decimal("0.1"), price=Decimal("50000"), client_trade_id="c-1")
    [trade, *rest] = decide(execute_trade, funded("100000"), cmd)
    assert trade == TradeExecuted(
        trade_id=cmd.trade_id, user_id=1, client_trade_id="c-1", pair="BTC/USD", asset="BTC", side="buy",
        amount=Decimal("0.1"), price=Decimal("50000"), notional=Decimal("5000.000000000000000000"),
        fee=Decimal("5.000000000000000000"), realised_pnl=Decimal(0), average_cost=Decimal("50000"),
        market_price=Decimal("50000"), executed_at=FIXED_NOW,
    )
    assert rest == []  # 5,000 of 100,000 is exactly 5%: not more than the threshold
    state = fold([*funded("100000"), trade])
    assert state.cash == Decimal("94995") and state.fees_paid == Decimal(5)
    assert state.holding("BTC") == Holding(quantity=Decimal("0.1"), average_cost=Decimal("50000"))


def test_average_cost_follows_buys_and_sells_realise_against_it() -> None:
    given = bought(amount="0.5", price="50000")
    second = decide(execute_trade, given, ExecuteTradeFactory(amount=Decimal("0.5"), price=Decimal("51000")))
    state = fold([*given, *second])
    assert state.holding("BTC").average_cost == Decimal("50500")
    [sell, *_] = decide(execute_trade, [*given, *second],
                        ExecuteTradeFactory(side="sell", amount=Decimal("0.5"), price=Decimal("52000")))
    assert sell.realised_pnl == Decimal("750")  # (52,000 - 50,500) x 0.5, fee not included
    after = fold([*given, *second, sell])
    assert after.holding("BTC") == Holding(quantity=Decimal("0.5"), average_cost=Decimal("50500"),
                                           realised_pnl=Decimal("750"))
    assert after.realised_pnl == Decimal("750")
    assert after.cash == state.cash + Decimal("26000") - Decimal("26")


def test_selling_everything_leaves_a_flat_position_at_zero_cost() -> None:
    given = bought(amount="0.2")
    [sell, *_] = decide(execute_trade, given, ExecuteTradeFactory(side="sell", amount=Decimal("0.2")))
    assert fold([*given, sell]).holding("BTC").quantity == 0 and sell.average_cost == 0


def test_notional_below_ten_dollars_is_amount_too_small() -> None:
    with pytest.raises(AmountTooSmall):
        decide(execute_trade, funded(), ExecuteTradeFactory(amount=Decimal("0.000199999"), price=Decimal("50000")))
    decide(execute_trade, funded(), ExecuteTradeFactory(amount=Decimal("0.0002"), price=Decimal("50000")))


@pytest.mark.parametrize("pair", ["XRP/USD", "ETH/BTC", "btc/usd", "BTCUSD", ""])
def test_unknown_or_non_usd_pairs_are_refused(pair: str) -> None:
    with pytest.raises(UnknownPair):
        decide(execute_trade, funded(), ExecuteTradeFactory(pair=pair))


def test_a_known_pair_without_a_price_is_unavailable() -> None:
    with pytest.raises(MarketUnavailable):
        decide(execute_trade, funded(), ExecuteTradeFactory(pair="DOGE/USD", amount=Decimal(100),
                                                              price=Decimal("0.2")))


@pytest.mark.parametrize("field", ["amount", "price"])
def test_amount_and_price_must_be_positive(field: str) -> None:
    with pytest.raises(AmountNotPositive):
        decide(execute_trade, funded(), ExecuteTradeFactory(**{field: Decimal("-1")}))


def test_buys_beyond_the_default_position_limit_are_refused() -> None:
    ok = ExecuteTradeFactory(amount=Decimal("2"), price=Decimal("50000"))  # 100,000: exactly the default
    decide(execute_trade, funded("200000"), ok)
    with pytest.raises(PositionLimitExceeded):
        decide(execute_trade, funded("200000"), dataclasses.replace(ok, amount=Decimal("2.000000000000000001")))


def test_the_position_limit_counts_what_is_already_held() -> None:
    given = bought(cash="200000", amount="1.5")
    with pytest.raises(PositionLimitExceeded):
        decide(execute_trade, given, ExecuteTradeFactory(amount=Decimal("0.6")))
    decide(execute_trade, given, ExecuteTradeFactory(side="sell", amount=Decimal("1.5")))  # sells never are


def test_an_operator_limit_replaces_the_default() -> None:
    given = [*funded(), RiskLimitsSet(user_id=1, max_position_usd=Decimal("1000"), set_by=9)]
    with pytest.raises(PositionLimitExceeded):
        decide(execute_trade, given, ExecuteTradeFactory(amount=Decimal("0.021")))
    decide(execute_trade, given, ExecuteTradeFactory(amount=Decimal("0.02")))


def test_a_buy_needs_cash_for_notional_plus_fee() -> None:
    cmd = ExecuteTradeFactory(amount=Decimal("0.1"), price=Decimal("50000"))  # 5,000 + 5 fee
    decide(execute_trade, funded("5005"), cmd)
    with pytest.raises(InsufficientFunds):
        decide(execute_trade, funded("5004.999999999999999999"), cmd)
    with pytest.raises(InsufficientFunds):
        decide(execute_trade, [], cmd)


def test_selling_more_than_held_is_insufficient_position() -> None:
    with pytest.raises(InsufficientPosition):
        decide(execute_trade, bought(amount="0.1"), ExecuteTradeFactory(side="sell", amount=Decimal("0.100001")))
    with pytest.raises(InsufficientPosition):
        decide(execute_trade, funded(), ExecuteTradeFactory(side="sell", pair="ETH/USD", price=Decimal("2500"),
                                                            amount=Decimal(1)))


@pytest.mark.parametrize(("price", "ok"), [("52500", True), ("47500", True), ("52500.01", False),
                                           ("47499.99", False)])
def test_price_must_be_within_the_band_of_the_market(price: str, ok: bool) -> None:
    cmd = ExecuteTradeFactory(amount=Decimal("0.01"), price=Decimal(price))
    if ok:
        decide(execute_trade, funded(), cmd)
    else:
        with pytest.raises(PriceOutOfRange):
            decide(execute_trade, funded(), cmd)


def test_a_client_trade_id_is_used_once_per_portfolio() -> None:
    given = funded()
    first = decide(execute_trade, given, ExecuteTradeFactory(amount=Decimal("0.01"), client_trade_id="mine"))
    with pytest.raises(DuplicateClientTradeId):
        decide(execute_trade, [*given, *first], ExecuteTradeFactory(amount=Decimal("0.01"), client_trade_id="mine"))


def test_a_large_trade_records_its_impact_in_percent() -> None:
    cmd = ExecuteTradeFactory(amount=Decimal("0.1"), price=Decimal("50000"))
    [trade, impact] = decide(execute_trade, funded("40000"), cmd)
    assert impact == PortfolioImpacted(
        user_id=1, trade_id=cmd.trade_id, value_before=Decimal("40000.000000000000000000"),
        value_after=Decimal("39995.000000000000000000"), notional=trade.notional, change_percent=Decimal("12.5000"),
    )


def test_impact_values_holdings_at_market_prices() -> None:
    given = bought(cash="50000", amount="0.5")  # 25,000 cash + 0.5 BTC
    market = dataclasses.replace(MARKET, prices={**MARKET.prices, "BTC/USD": Decimal("40000")})
    cmd = ExecuteTradeFactory(pair="ETH/USD", amount=Decimal("0.9"), price=Decimal("2500"))  # 2,250 of 44,975
    [_, impact] = decide(execute_trade, given, cmd, trade_context(market=market))
    assert impact.value_before == Decimal("44975") and impact.change_percent == Decimal("5.0028")
    threshold = dataclasses.replace(RULES, impact_threshold=Decimal("0.06"))
    assert len(decide(execute_trade, given, cmd, trade_context(market=market, rules=threshold))) == 1


def test_impact_counts_reserved_cash_and_yield_principal_in_the_value() -> None:
    reservation = uuid.uuid4()
    given = [*funded("40000"), FundsReserved(user_id=1, reservation_id=reservation, amount=Decimal("20000"),
                                             purpose="yield")]
    cmd = ExecuteTradeFactory(amount=Decimal("0.05"), price=Decimal("50000"))  # 2,500: 6.25% of 40,000

    [_, impact] = decide(execute_trade, given, cmd)

    assert impact.value_before == Decimal("40000") and impact.change_percent == Decimal("6.2500")
    threshold = dataclasses.replace(RULES, impact_threshold=Decimal("0.07"))  # 12.5% of the cash alone
    assert len(decide(execute_trade, given, cmd, trade_context(rules=threshold))) == 1


def test_the_fee_rate_comes_from_the_rules() -> None:
    rules = dataclasses.replace(RULES, fee_rate=Decimal("0.0025"))
    [trade, *_] = decide(execute_trade, funded("100000"), ExecuteTradeFactory(amount=Decimal("0.1")),
                         trade_context(rules=rules))
    assert trade.fee == Decimal("12.5")


def test_money_stays_exact_at_eighteen_places() -> None:
    cmd = ExecuteTradeFactory(pair="SOL/USD", amount=Decimal("0.123456789012345678"), price=Decimal("100.000000000000000001"))
    [trade, *_] = decide(execute_trade, funded("1000"), cmd, trade_context(market=MarketSnapshot(
        MARKET.pairs, {**MARKET.prices})))
    assert trade.notional == Decimal("12.345678901234567800")  # 36-place product fixed to 18 in the event
    assert trade.notional.as_tuple().exponent == -18
