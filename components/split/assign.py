"""Stratified assignment of whole units to train/val/test.

The aim: every split's share of each stratum (category) and of all rows as close as possible to its
target ratio, while a unit (see units.py) is never cut. The cost is the sum of squared deviations,
measured as shares (count / stratum total, size / row total) so that small categories weigh as much as
big ones. Units are placed greedily, largest first (a bin-packing habit: big pieces first, small ones
fill the gaps), each where it lowers the cost against the targets *of the units placed so far*: measured
against the final targets, every big unit would go to train (it has by far the largest deficit) and val
and test would hold no grouped rows at all; measured against the running targets, units of every size
are dealt out in proportion. Then single units are moved while a move lowers the final cost. The seed
orders units of equal size and breaks ties, so the same seed gives the same split and another seed a
different one.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

# Local search stops after this many full passes without having to converge; each pass only ever lowers
# the cost, and in practice it settles in two or three.
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
        # Targets follow the rows seen so far; once every unit is placed they are the final targets.
        self.seen = Counter()
        self.seen_n = 0

    def see(self, unit: Counter, size: int) -> None:
        self.seen.update(unit)
        self.seen_n += size

    def _term(self, s: int, stratum: str, count: int) -> float:
        return ((count - self.ratios[s] * self.seen[stratum]) / self.totals[stratum]) ** 2

    def _size_term(self, s: int, size: int) -> float:
        return ((size - self.ratios[s] * self.seen_n) / self.n) ** 2

    def delta(self, s: int, unit: Counter, size: int, sign: int = 1) -> float:
        """Change of the cost when `unit` is added to (sign=1) or removed from (sign=-1) split s."""
        d = self._size_term(s, self.sizes[s] + sign * size) - self._size_term(s, self.sizes[s])
        for stratum, k in unit.items():
            now = self.counts[s][stratum]
            d += self._term(s, stratum, now + sign * k) - self._term(s, stratum, now)
        return d

    def put(self, s: int, unit: Counter, size: int, sign: int = 1) -> None:
        self.sizes[s] += sign * size
        for stratum, k in unit.items():
            self.counts[s][stratum] += sign * k


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
    for u in order:
        balance.see(unit_strata[u], sizes[u])
        costs = [(balance.delta(s, unit_strata[u], sizes[u]), s) for s in balance.active]
        best = min(c for c, _ in costs)
        choice = rng.choice([s for c, s in costs if c <= best + _EPS])
        balance.put(choice, unit_strata[u], sizes[u])
        where[u] = choice

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
