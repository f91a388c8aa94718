"""Settings package: ``base`` holds everything; ``test`` adjusts it for the suite.

``LEDGERLINE_PROFILE=production`` selects ``production`` (strict: see that module).
"""
from __future__ import annotations

import os

_PROFILE = os.environ.get("LEDGERLINE_PROFILE", "").strip().lower()
if _PROFILE == "production":
    from .production import *  # noqa: F401,F403
elif _PROFILE not in ("", "embedded", "development"):
    raise RuntimeError(f"LEDGERLINE_PROFILE must be production or empty, not {_PROFILE!r}")
else:
    from .base import *  # noqa: F401,F403
