"""Units of assignment: rows that must land in the same split.

Two rows share a unit when they share a `group_by` value, or (with `cluster_near_duplicates`) when their
prompts or completions are exact or near duplicates. Connected through any chain of these links, so
the split assigns whole units and nothing that belongs together can straddle two splits.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from components.common.near_duplicates import near_duplicate_clusters
from components.common.settings.rules import NearDuplicateRule
from components.common.text import dedup_key

TEXT_FIELDS = ("prompt", "completion")


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True

    def union_all(self, members: Sequence[int]) -> int:
        return sum(self.union(members[0], m) for m in members[1:])


@dataclass
class Units:
    members: list[list[int]]  # row indices per unit, each sorted; units ordered by their first row
    links: dict[str, int] = field(default_factory=dict)  # how many merges each kind of link caused

    def unit_of_rows(self, n_rows: int) -> list[int]:
        owner = [0] * n_rows
        for u, rows in enumerate(self.members):
            for r in rows:
                owner[r] = u
        return owner


def _same_value_runs(values: Sequence[Any]) -> list[list[int]]:
    by_value: dict[Any, list[int]] = {}
    for i, v in enumerate(values):
        if v is not None and v != "":
            by_value.setdefault(v, []).append(i)
    return [rows for rows in by_value.values() if len(rows) > 1]


def build_units(rows: Sequence[dict[str, Any]], group_by: str | None, cluster_near_duplicates: bool,
                rule: NearDuplicateRule) -> Units:
    uf = _UnionFind(len(rows))
    links: dict[str, int] = {}
    if group_by:
        values = [_hashable(r.get(group_by)) for r in rows]
        links["group"] = sum(uf.union_all(run) for run in _same_value_runs(values))
    if cluster_near_duplicates:
        for name in TEXT_FIELDS:
            texts = [r[name] for r in rows]
            links[f"exact_{name}"] = sum(uf.union_all(run) for run in _same_value_runs([dedup_key(t) for t in texts]))
            print(f"split: clustering near-duplicate {name}s of {len(texts)} rows", file=sys.stderr)
            links[f"near_{name}"] = sum(uf.union_all(c) for c in near_duplicate_clusters(texts, rule))
    by_root: dict[int, list[int]] = {}
    for i in range(len(rows)):
        by_root.setdefault(uf.find(i), []).append(i)
    return Units(members=sorted(by_root.values(), key=lambda m: m[0]), links=links)


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return value
