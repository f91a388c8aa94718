"""Rate limits of the API: commands per user, token requests per client address."""
from __future__ import annotations

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle
from rest_framework.views import APIView


class _LiveRateMixin:
    """Reads the rate from settings on each request, not once at import (settings may change)."""

    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class CommandRateThrottle(_LiveRateMixin, UserRateThrottle):
    """``REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['commands']`` per user (per address when anonymous)."""

    scope = "commands"


class AuthRateThrottle(_LiveRateMixin, SimpleRateThrottle):
    """``...['auth']`` per client address, signed in or not: slows down password guessing."""

    scope = "auth"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
