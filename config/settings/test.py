"""Settings for the test suite: the base settings plus a test-only context and fast hashing."""
from __future__ import annotations

import os

from .base import *  # noqa: F401,F403
from .base import DATABASES, INSTALLED_APPS

# Two suites run at once from one checkout need their own test databases.
_SUFFIX = os.environ.get("LEDGERLINE_TEST_DB_SUFFIX", "")

INSTALLED_APPS = [*INSTALLED_APPS, "tests.bus_app"]
ROOT_URLCONF = "tests.urls"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CQRS_SNAPSHOT_EVERY = 5

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # File-backed, so that real threads share one database (in-memory SQLite would not).
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".pytest-db{_SUFFIX}.sqlite3")}  # noqa: F405
else:
    if _SUFFIX:
        DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}{_SUFFIX}"}
    # Lets the suite reset tables between transactional tests; see cqrs_core migration 0002.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c ledgerline.allow_truncate=on"
