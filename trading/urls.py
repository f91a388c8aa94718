from __future__ import annotations

from django.urls import path

from . import apis, strategy_apis

urlpatterns = [
    path("trades/", apis.TradesApi.as_view(), name="trading-trades"),
    path("trades/<uuid:trade_id>/", apis.TradeDetailApi.as_view(), name="trading-trade-detail"),
    path("strategies/", strategy_apis.StrategiesApi.as_view(), name="trading-strategies"),
    path("strategies/<uuid:strategy_id>/", strategy_apis.StrategyDetailApi.as_view(), name="trading-strategy-detail"),
    path("strategies/<uuid:strategy_id>/signals/", strategy_apis.StrategySignalsApi.as_view(),
         name="trading-strategy-signals"),
]
