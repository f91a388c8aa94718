"""The seeded APY drift of the simulated feed, in Decimal.

The APY after tick ``n`` is the APY before times ``exp(sigma * z)``, where ``z`` is a normal draw
(``market.simulation.normal``, exact in Decimal) seeded by ``(seed, slug, n)``, rounded to 0.01
and kept within [``MIN_APY``, ``MAX_APY``]: the same seed and history give the same APYs.
"""
from __future__ import annotations

import decimal
import random
from decimal import Decimal

from market.simulation import normal

APY_PLACES = Decimal("0.01")
MIN_APY, MAX_APY = Decimal("0.01"), Decimal("500")
_CTX = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN)


def drifted(apy: Decimal, *, seed: int, slug: str, tick: int, sigma: Decimal) -> Decimal:
    """The APY after one tick of the seeded drift."""
    rng = random.Random(f"{seed}:{slug}:{tick}")
    with decimal.localcontext(_CTX):
        moved = (apy * (sigma * normal(rng)).exp()).quantize(APY_PLACES)
    return min(MAX_APY, max(MIN_APY, moved))
