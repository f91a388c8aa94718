"""Settings of the benchmark stack: the production profile, plus the test saga app.

The production profile is what a deployment runs (no debug, no SQL recording, WhiteNoise,
JSON-only API), so the figures are those of the real configuration. ``tests.bus_app`` is added
for its ``TransferSaga``: the saga scenario measures the engine's bare cost with it, beside the
yield-farming saga. The harness sets the variables production refuses to start
without (``benchmarks.stack.bench_environment``).
"""
from __future__ import annotations

from config.settings.production import *  # noqa: F401,F403
from config.settings.production import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.bus_app"]
