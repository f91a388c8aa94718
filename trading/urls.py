from __future__ import annotations

from django.urls import path

from . import apis

urlpatterns = [
    path("trades/", apis.TradesApi.as_view(), name="trading-trades"),
    path("trades/<uuid:trade_id>/", apis.TradeDetailApi.as_view(), name="trading-trade-detail"),
]
