"""Value history, time-weighted returns, volatility and drawdown on hand-computed examples (no database)."""
from __future__ import annotations

import datetime as dt
import math
import statistics
from decimal import Decimal

from portfolio.analytics import (
    HOURS_PER_YEAR, Move, annualised_volatility, history, max_drawdown, performance, value_history, window_return,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
H = dt.timedelta(hours=1)
D = Decimal


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def deposit(when: dt.datetime, amount: str) -> Move:
    return Move(when, D(amount), D(amount))


def withdraw(when: dt.datetime, amount: str) -> Move:
    return Move(when, -D(amount), -D(amount))


def buy(when: dt.datetime, asset: str, quantity: str, price: str, fee: str = "0") -> Move:
    cost = D(quantity) * D(price) + D(fee)
    return Move(when, -cost, asset=asset, quantity=D(quantity), price=D(price))


#: Deposit 10000 at 00:00, buy 0.1 BTC at 50000 (fee 5) at 00:30, withdraw 1000 at 02:30.
EXAMPLE = [deposit(at(0), "10000"), buy(at(0.5), "BTC", "0.1", "50000", "5"), withdraw(at(2.5), "1000")]
#: BTC closes of the hours opening at 00:00 .. 03:00.
BTC = {"BTC": [(at(0), D("50000")), (at(1), D("55000")), (at(2), D("44000")), (at(3), D("48400"))]}


def test_value_history_marks_holdings_at_the_latest_close_before_each_instant() -> None:
    points = value_history(EXAMPLE, BTC, at(4))
    assert [(p.at, p.value, p.flow) for p in points] == [
        (at(0), D("10000"), D(0)),          # no close before 00:00 and nothing held
        (at(0.5), D("9995.0"), D(0)),       # 4995 cash + 0.1 x 50000 (the fee is a loss, not a flow)
        (at(1), D("9995.0"), D(0)),
        (at(2), D("10495.0"), D(0)),        # 0.1 x 55000
        (at(2.5), D("8395.0"), D("-1000")),  # 3995 + 0.1 x 44000, after the withdrawal
        (at(3), D("8395.0"), D(0)),
        (at(4), D("8835.0"), D(0)),         # 0.1 x 48400
    ]
    assert [p.hourly for p in points] == [True, False, True, True, False, True, True]
    assert points[-1].net_flows == D("9000")


def test_time_weighted_return_excludes_deposits_and_withdrawals() -> None:
    points = value_history(EXAMPLE, BTC, at(4))
    # Sub-period returns chained; the withdrawal at 02:30 is taken out of the value after it.
    expected = (D("9995") / D("10000")) * (D("10495") / D("9995")) * (D("9395") / D("10495")) * (D("8835") / D("8395"))
    assert abs(points[-1].index - expected) < D("1e-25")
    result = performance(points, at(4))
    assert result["time_weighted_return_pct"] == ((expected - 1) * 100).quantize(D("1e-4")) == D("-1.1259")
    # Value minus net deposits would say -1.65 %: the withdrawal is not a loss here.
    assert (points[-1].value - points[-1].net_flows) / D("10000") * 100 == D("-1.65")
    assert result["value"] == D("8835") and result["net_flows"] == D("9000")


def test_window_returns_start_at_the_window_and_are_null_when_history_is_shorter() -> None:
    points = value_history(EXAMPLE, BTC, at(4))
    since_two = (D("9395") / D("10495")) * (D("8835") / D("8395")) - 1
    assert window_return(points, at(4), 2 * H) == (since_two * 100).quantize(D("1e-4"))
    assert window_return(points, at(4), 4 * H) == D("-1.1259")  # the whole history
    assert window_return(points, at(4), 4 * H + dt.timedelta(minutes=1)) is None
    assert performance(points, at(4))["returns_pct"] == {"1d": None, "7d": None, "30d": None}


def test_no_moves_no_history() -> None:
    assert value_history([], BTC, at(4)) == []
    assert performance([], at(4))["returns_pct"]["1d"] is None
    assert max_drawdown([]) is None


def test_an_asset_with_no_close_yet_is_marked_at_its_trade_price() -> None:
    points = value_history([deposit(at(0), "1000"), buy(at(0), "SOL", "2", "100")], {}, at(1))
    assert [p.value for p in points] == [D("1000"), D("1000")]


def test_drawdown_on_a_known_series() -> None:
    closes = [D(p) for p in ("100", "120", "90", "60", "130", "150", "140")]
    moves = [deposit(at(0), "100"), buy(at(0), "BTC", "1", "100")]
    prices = {"BTC": [(at(h), close) for h, close in enumerate(closes)]}
    points = value_history(moves, prices, at(7))
    assert [p.value for p in points] == [D("100"), *closes]  # at(k) is marked at the close of hour k-1
    drawdown = max_drawdown(points)
    assert drawdown == {"percent": D("-50.0000"), "value": D("-60"), "peak_at": at(2), "trough_at": at(4),
                        "recovered_at": at(5)}


def test_drawdown_ignores_withdrawals_and_counts_only_market_loss() -> None:
    moves = [deposit(at(0), "100"), buy(at(0), "BTC", "1", "100"), deposit(at(2.5), "50"), withdraw(at(3.5), "30")]
    prices = {"BTC": [(at(0), D("100")), (at(1), D("80")), (at(2), D("80")), (at(3), D("90"))]}
    drawdown = max_drawdown(value_history(moves, prices, at(4)))
    assert drawdown is not None
    assert drawdown["percent"] == D("-20.0000") and drawdown["value"] == D("-20")
    assert (drawdown["peak_at"], drawdown["trough_at"], drawdown["recovered_at"]) == (at(0), at(2), None)


def test_a_rising_series_has_no_drawdown() -> None:
    moves = [deposit(at(0), "100"), buy(at(0), "BTC", "1", "100")]
    prices = {"BTC": [(at(h), D(100 + h)) for h in range(5)]}
    assert max_drawdown(value_history(moves, prices, at(5))) == {
        "percent": D(0), "value": D(0), "peak_at": None, "trough_at": None, "recovered_at": None}


def test_volatility_is_the_annualised_deviation_of_hourly_returns() -> None:
    closes = ["100", "102", "99", "101", "104", "103", "105"]
    moves = [deposit(at(0), "100"), buy(at(0), "BTC", "1", "100")]
    prices = {"BTC": [(at(h), D(c)) for h, c in enumerate(closes)]}
    points = value_history(moves, prices, at(7))
    volatility, observations = annualised_volatility(points, at(7))
    returns = [float(b) / float(a) - 1 for a, b in zip(["100", *closes], closes)]
    assert observations == len(returns) == 7
    assert volatility is not None
    assert math.isclose(float(volatility), statistics.stdev(returns) * math.sqrt(HOURS_PER_YEAR) * 100, rel_tol=1e-6)


def test_volatility_needs_two_hourly_returns() -> None:
    points = value_history([deposit(at(0), "100")], {}, at(1))
    assert annualised_volatility(points, at(1)) == (None, 1)


def test_history_is_bounded_evenly_and_keeps_the_latest_point() -> None:
    moves = [deposit(at(0), "100")]
    points = value_history(moves, {}, at(99))
    bounded = history(points, 10)
    assert len(bounded) == 10 and bounded[-1]["at"] == at(99) and bounded[0]["at"] == at(9)
    assert [b["at"] for b in bounded] == sorted(b["at"] for b in bounded)
    assert len(history(points, 500)) == 100
