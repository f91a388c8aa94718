"""Rate limits of the API: commands per user, token requests per client address.

DRF's throttles keep each client's request times as one pickled list in the cache: a ``get``
and a ``set`` per request (two round trips, the whole list both ways, and two concurrent
requests can each count only themselves). On Redis the same sliding window runs as one
script instead: one round trip, atomic. Other caches (the embedded stack's local memory) keep
DRF's implementation; the answers are the same either way.
"""
from __future__ import annotations

import logging
import os
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as default_cache
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle
from rest_framework.views import APIView

logger = logging.getLogger("ledgerline.api")

try:
    from django_redis.cache import RedisCache
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover - django-redis is a requirement; only the embedded stack lacks Redis
    RedisCache = RedisError = None  # type: ignore[assignment,misc]

#: KEYS[1]: the window's sorted set (member per request, scored by its time). ARGV: now, the
#: cut-off (times at or before it have left the window), the limit, this request's member, the
#: window in seconds. Returns {allowed, requests in the window, the oldest one's time}: the
#: same decision and ``wait`` inputs as DRF's list, where a refused request is not recorded.
_SLIDING_WINDOW = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, count, oldest[2]}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {1, count + 1, '0'}
"""


class _LiveRateMixin:
    """Reads the rate from settings on each request, not once at import (settings may change)."""

    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class _OneRoundTripMixin:
    """DRF's sliding window in one atomic Redis round trip when the cache is django-redis.

    A cache that does not answer lets the request through, as DRF's throttle does on a cache
    that ignores its errors (``IGNORE_EXCEPTIONS``); with errors not ignored, they propagate.
    """

    cache: Any
    timer: Any
    rate: str | None
    num_requests: int
    duration: int
    _script: Any = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        backend = _redis_backend(self.cache)
        if backend is None or self.rate is None:
            return super().allow_request(request, view)  # type: ignore[misc,no-any-return]
        self.key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if self.key is None:
            return True
        self.now = self.timer()
        try:
            allowed, count, oldest = self._run(backend)
        except RedisError as exc:
            if not getattr(backend, "_ignore_exceptions", False):
                raise
            logger.warning("throttle %s: the cache did not answer (%s); request let through", self.key, exc)
            self.history: list[float] = []
            return True
        # What DRF's ``wait`` reads: the window's requests, the oldest last.
        self.history = [float(oldest)] * int(count) if not allowed else []
        return bool(allowed)

    def _run(self, backend: Any) -> tuple[int, int, bytes | str]:
        client = backend.client.get_client(write=True)
        script = _OneRoundTripMixin._script
        if script is None:
            script = _OneRoundTripMixin._script = client.register_script(_SLIDING_WINDOW)
        member = f"{self.now!r}:{os.urandom(6).hex()}"
        allowed, count, oldest = script(keys=[backend.make_key(f"{self.key}:window")], client=client,
                                        args=[repr(self.now), repr(self.now - self.duration), self.num_requests,
                                              member, self.duration])
        return int(allowed), int(count), oldest


def _redis_backend(cache: Any) -> Any:
    """The django-redis backend behind ``cache``, or None when it is another kind of cache."""
    if RedisCache is None:
        return None
    backend = caches[DEFAULT_CACHE_ALIAS] if cache is default_cache else cache
    return backend if isinstance(backend, RedisCache) else None


class CommandRateThrottle(_LiveRateMixin, _OneRoundTripMixin, UserRateThrottle):
    """``REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['commands']`` per user (per address when anonymous)."""

    scope = "commands"


class AuthRateThrottle(_LiveRateMixin, _OneRoundTripMixin, SimpleRateThrottle):
    """``...['auth']`` per client address, signed in or not: slows down password guessing."""

    scope = "auth"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
