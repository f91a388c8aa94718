"""The trading tests share the portfolio tests' fixtures (one consistency boundary, one market)."""
from __future__ import annotations

from tests.api.conftest import anon_api  # noqa: F401  (fixture)
from tests.portfolio.conftest import (  # noqa: F401  (fixtures)
    _fresh_throttles, alice, api, bob, bob_api, fixed_market, operator, staff_api,
)
