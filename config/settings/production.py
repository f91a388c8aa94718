"""The production profile: ``LEDGERLINE_PROFILE=production`` (or ``DJANGO_SETTINGS_MODULE=config.settings.production``).

It refuses to start without what production cannot guess or must not default: ``DJANGO_SECRET_KEY``
(at least 50 characters), ``DATABASE_URL`` and ``DJANGO_ALLOWED_HOSTS``. Debug pages are off, cookies
are secure, HSTS is on and plain HTTP is redirected (set ``DJANGO_SECURE_SSL_REDIRECT=false`` when a
proxy in front terminates TLS and talks HTTP to us; it must then send ``X-Forwarded-Proto``).
Static files (the admin's and the offline API docs') are served by WhiteNoise from ``STATIC_ROOT``
after ``manage.py collectstatic``, so the docs need neither a CDN nor a separate web server.

Behind a reverse proxy, set ``DJANGO_NUM_PROXIES`` to the number of proxies that append to
``X-Forwarded-For``: throttling then keys anonymous clients by the real client address
instead of the proxy's (DRF's ``NUM_PROXIES``). Without proxies leave it unset.
"""
from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import MIDDLEWARE, REST_FRAMEWORK, env


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"The production profile needs {name}; it has no default.")
    return value


DEBUG = False
SECRET_KEY = _required("DJANGO_SECRET_KEY")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be a random string of at least 50 characters.")
_required("DATABASE_URL")
ALLOWED_HOSTS = [h.strip() for h in _required("DJANGO_ALLOWED_HOSTS").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Health probes come from the orchestrator over plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
# HSTS preload is a one-way decision for the domain owner; the check stays quiet unless chosen.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# WhiteNoise right after SecurityMiddleware, as its docs ask.
_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware")
MIDDLEWARE = [*MIDDLEWARE[: _security + 1], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[_security + 1:]]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    # No browsable API in production: JSON only.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "NUM_PROXIES": env.int("DJANGO_NUM_PROXIES", default=None),
}
