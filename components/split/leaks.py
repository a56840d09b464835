"""The leak check: no exact or near duplicate of a prompt or a completion across train, val and test.

Exact duplicates share `dedup_key`; near duplicates are found by the same MinHash detector clean uses
(`cross_matches`). A pair is reported once, as exact when the keys agree, with both rows' id and
source_line so a person can find them in the raw data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from components.common.near_duplicates import cross_matches
from components.common.settings.rules import NearDuplicateRule
from components.common.text import dedup_key

TEXT_FIELDS = ("prompt", "completion")


def _row_ref(split: str, row: Mapping[str, Any]) -> dict[str, Any]:
    return {"split": split, "id": row["id"], "source_line": row["source_line"]}


def find_leaks(splits: Mapping[str, Sequence[Mapping[str, Any]]], rule: NearDuplicateRule) -> list[dict[str, Any]]:
    """Every pair of rows in different splits whose prompt or completion is an exact or near duplicate."""
    leaks: list[dict[str, Any]] = []
    order = {name: k for k, name in enumerate(splits)}  # a pair reads in split order: train before val before test
    for field in TEXT_FIELDS:
        seen: set[tuple[tuple[str, int], tuple[str, int]]] = set()

        def record(a: tuple[str, int], b: tuple[str, int], kind: str, similarity: float,
                   field: str = field, seen: set = seen) -> None:
            pair = tuple(sorted((a, b), key=lambda p: (order[p[0]], p[1])))
            if pair in seen:
                return
            seen.add(pair)
            leaks.append({"field": field, "kind": kind, "similarity": similarity,
                          "a": _row_ref(pair[0][0], splits[pair[0][0]][pair[0][1]]),
                          "b": _row_ref(pair[1][0], splits[pair[1][0]][pair[1][1]])})

        by_key: dict[str, list[tuple[str, int]]] = {}
        for name, rows in splits.items():
            for i, row in enumerate(rows):
                by_key.setdefault(dedup_key(row[field]), []).append((name, i))
        for places in by_key.values():
            for x, a in enumerate(places):
                for b in places[x + 1 :]:
                    if a[0] != b[0]:
                        record(a, b, "exact", 1.0)

        texts = {name: [row[field] for row in rows] for name, rows in splits.items()}
        for match in cross_matches(texts, rule):
            a = (match["a"]["split"], match["a"]["index"])
            b = (match["b"]["split"], match["b"]["index"])
            record(a, b, "near", match["similarity"])
    return leaks


def describe(leak: Mapping[str, Any]) -> str:
    a, b = leak["a"], leak["b"]
    return (f"{leak['kind']} duplicate {leak['field']} across {a['split']} and {b['split']}: "
            f"id {a['id']} (source_line {a['source_line']}) ~ id {b['id']} (source_line {b['source_line']})"
            f", similarity {leak['similarity']}")
