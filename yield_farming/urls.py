from __future__ import annotations

from django.urls import path

from . import apis

urlpatterns = [
    path("strategies/", apis.StrategiesApi.as_view(), name="yield-strategies"),
    path("strategies/<uuid:strategy_id>/", apis.StrategyDetailApi.as_view(), name="yield-strategy-detail"),
    path("positions/", apis.PositionsApi.as_view(), name="yield-positions"),
    path("protocols/", apis.ProtocolsApi.as_view(), name="yield-protocols"),
    path("protocols/<slug:slug>/", apis.ProtocolDetailApi.as_view(), name="yield-protocol-detail"),
]
