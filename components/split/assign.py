"""Stratified assignment of whole units to train/val/test.

The aim: every split's share of each stratum (category) and of all rows as close as possible to its
target ratio, while a unit (see units.py) is never cut. The cost is the sum of squared deviations from
the targets, measured as shares (count / stratum total, size / row total) so that small categories weigh
as much as big ones. Three passes:

1. Units of several rows (groups, duplicate clusters), largest first, are dealt out in proportion: each
   goes where the rows dealt so far stay closest to the ratios, among the splits it fits in without pushing
   any of its categories past that split's target (rounded up). Placed by the cost alone, every such unit
   would go to train, whose deficit is by far the largest, and val and test would never see a grouped row.
2. Single rows fill what is left, each where it lowers the cost most.
3. Units are moved one at a time while a move lowers the cost.

The seed orders units of equal size and breaks ties, so the same seed gives the same split and another
seed a different one.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

# Pass 3 stops after this many full passes without having to converge; each pass only ever lowers the
# cost, and in practice it settles in two or three.
_MAX_REFINE_PASSES = 20
_EPS = 1e-12


class _Balance:
    def __init__(self, strata_totals: Counter, ratios: Sequence[float]):
        self.totals = strata_totals
        self.n = sum(strata_totals.values())
        self.ratios = ratios
        self.active = [s for s, r in enumerate(ratios) if r > 0]
        self.counts = [Counter() for _ in ratios]
        self.sizes = [0] * len(ratios)

    def _term(self, s: int, stratum: str, count: int) -> float:
        total = self.totals[stratum]
        return ((count - self.ratios[s] * total) / total) ** 2

    def _size_term(self, s: int, size: int) -> float:
        return ((size - self.ratios[s] * self.n) / self.n) ** 2

    def delta(self, s: int, unit: Counter, size: int, sign: int = 1) -> float:
        """Change of the cost when `unit` is added to (sign=1) or removed from (sign=-1) split s."""
        d = self._size_term(s, self.sizes[s] + sign * size) - self._size_term(s, self.sizes[s])
        for stratum, k in unit.items():
            now = self.counts[s][stratum]
            d += self._term(s, stratum, now + sign * k) - self._term(s, stratum, now)
        return d

    def fits(self, s: int, unit: Counter, size: int) -> bool:
        if self.sizes[s] + size > math.ceil(self.ratios[s] * self.n):
            return False
        return all(self.counts[s][c] + k <= math.ceil(self.ratios[s] * self.totals[c]) for c, k in unit.items())

    def put(self, s: int, unit: Counter, size: int, sign: int = 1) -> None:
        self.sizes[s] += sign * size
        for stratum, k in unit.items():
            self.counts[s][stratum] += sign * k


def _cheapest(rng: random.Random, costs: list[tuple[float, int]]) -> int:
    best = min(c for c, _ in costs)
    return rng.choice([s for c, s in costs if c <= best + _EPS])


def assign_units(units: Sequence[Sequence[int]], strata: Sequence[str], ratios: Sequence[float],
                 seed: int) -> list[int]:
    """The split index (0 train, 1 val, 2 test) of each unit."""
    rng = random.Random(seed)
    unit_strata = [Counter(strata[r] for r in rows) for rows in units]
    sizes = [len(rows) for rows in units]
    balance = _Balance(Counter(strata), ratios)

    order = list(range(len(units)))
    rng.shuffle(order)
    order.sort(key=lambda u: -sizes[u])  # stable: equal sizes keep the seeded order
    where = [-1] * len(units)

    dealt = [0] * len(ratios)
    dealt_total = 0
    for u in (u for u in order if sizes[u] > 1):
        dealt_total += sizes[u]
        fitting = [s for s in balance.active if balance.fits(s, unit_strata[u], sizes[u])]
        if fitting:
            costs = [((dealt[s] + sizes[u] - ratios[s] * dealt_total) ** 2
                      - (dealt[s] - ratios[s] * dealt_total) ** 2, s) for s in fitting]
        else:
            costs = [(balance.delta(s, unit_strata[u], sizes[u]), s) for s in balance.active]
        where[u] = _cheapest(rng, costs)
        dealt[where[u]] += sizes[u]
        balance.put(where[u], unit_strata[u], sizes[u])

    for u in (u for u in order if sizes[u] == 1):
        where[u] = _cheapest(rng, [(balance.delta(s, unit_strata[u], 1), s) for s in balance.active])
        balance.put(where[u], unit_strata[u], 1)

    for _ in range(_MAX_REFINE_PASSES):
        moved = False
        for u in order:
            here = where[u]
            leave = balance.delta(here, unit_strata[u], sizes[u], sign=-1)
            balance.put(here, unit_strata[u], sizes[u], sign=-1)
            gains = [(leave + balance.delta(s, unit_strata[u], sizes[u]), s) for s in balance.active if s != here]
            best_gain, best_split = min(gains, default=(0.0, here))
            target = best_split if best_gain < -_EPS else here
            balance.put(target, unit_strata[u], sizes[u])
            if target != here:
                where[u] = target
                moved = True
        if not moved:
            break
    return where
