from __future__ import annotations

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns]
