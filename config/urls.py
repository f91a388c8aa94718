"""Project URLs: the admin, health probes and metrics, token sign-in, the OpenAPI schema and its offline docs."""
from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from cqrs_core.api.auth import TokenObtainApi
from cqrs_core.health import LivenessApi, ReadinessApi, metrics_view

# Unknown URLs under /api/ answer in the API's one error shape, not Django's HTML page.
handler404 = "cqrs_core.api.errors.api_not_found"
handler500 = "cqrs_core.api.errors.api_server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/live/", LivenessApi.as_view(), name="health-live"),
    path("health/ready/", ReadinessApi.as_view(), name="health-ready"),
    path("metrics", metrics_view, name="metrics"),
    path("api/auth/token/", TokenObtainApi.as_view(), name="api-token"),
    path("api/portfolio/", include("portfolio.urls")),
    path("api/trading/", include("trading.urls")),
    path("api/market/", include("market.urls")),
    path("api/yield/", include("yield_farming.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema", template_name="cqrs_core/api/redoc.html"),
         name="api-redoc"),
]
