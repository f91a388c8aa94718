from __future__ import annotations

from django.urls import include, path

from config.urls import handler404, handler500  # noqa: F401  (Django looks them up here)
from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, path("api/test-bus/", include("tests.bus_app.urls"))]
