from __future__ import annotations

from django.urls import path

from . import apis

urlpatterns = [
    path("top-coins/", apis.TopCoinsApi.as_view(), name="market-top-coins"),
    path("candles/", apis.CandlesApi.as_view(), name="market-candles"),
    path("pairs/", apis.PairsApi.as_view(), name="market-pairs"),
    path("pairs/<str:pair>/price/", apis.LatestPriceApi.as_view(), name="market-latest-price"),
]
