from __future__ import annotations

from django.urls import path

from . import apis

urlpatterns = [
    path("", apis.PortfolioApi.as_view(), name="portfolio-detail"),
    path("performance/", apis.PortfolioPerformanceApi.as_view(), name="portfolio-performance"),
    path("optimized/", apis.OptimizedPortfolioApi.as_view(), name="portfolio-optimized"),
    path("deposits/", apis.DepositApi.as_view(), name="portfolio-deposits"),
    path("withdrawals/", apis.WithdrawalApi.as_view(), name="portfolio-withdrawals"),
    path("<int:user_id>/risk-limits/", apis.RiskLimitsApi.as_view(), name="portfolio-risk-limits"),
    path("rebalance/", apis.RebalanceApi.as_view(), name="portfolio-rebalances"),
    path("rebalance/<uuid:rebalance_id>/", apis.RebalanceDetailApi.as_view(), name="portfolio-rebalance-detail"),
    path("rebalance/<uuid:rebalance_id>/execute/", apis.RebalanceExecuteApi.as_view(),
         name="portfolio-rebalance-execute"),
]
