"""Re-export: the exact Decimal column lives in the core, shared by every context."""
from __future__ import annotations

from cqrs_core.fields import ExactDecimalField

__all__ = ["ExactDecimalField"]
