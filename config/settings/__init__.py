"""Settings package: ``base`` holds everything; ``test`` adjusts it for the suite."""
from __future__ import annotations

from .base import *  # noqa: F401,F403
