"""Near-duplicate detection: MinHash LSH over character n-grams.

Character n-grams suit Japanese, which has no spaces to split words on. Signatures are datasketch MinHashes
(its `affine32` permutation scheme; `signature()` returns a `LeanMinHash`), computed for a whole text at
once with numpy instead of one Python call per n-gram. The LSH index proposes candidates in sub-quadratic
time; each candidate is then confirmed by the Jaccard similarity estimated from the two signatures, so the
threshold means what it says. Used by clean (one survivor per cluster) and split (no near duplicate across
train/val/test).

Why not datasketch's MinHashLSH: its bands are chosen to balance false positives against false negatives,
which finds only ~44% of pairs sitting at the threshold (0.7, 128 permutations: 14 bands of 9 rows), and it
keeps a Python set per bucket (~12 KB per indexed text with enough bands for recall, 2.4 GB at 200k rows).
Here the bands are chosen so that pairs at the threshold become candidates with probability >= 0.98
(false candidates only cost one signature comparison), and a bucket holding one text stores just its
position.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from functools import lru_cache

import numpy as np
from datasketch import LeanMinHash, MinHash

from components.common.config import NearDuplicateRule
from components.common.text import dedup_key

_SCHEME = "affine32"
# Candidate recall wanted at the threshold itself; higher above it.
_MIN_RECALL_AT_THRESHOLD = 0.98
_POLY = np.uint64(0x100000001B3)  # FNV prime: odd, mixes code points of one n-gram into 64 bits
_MIX = np.uint64(0x9E3779B97F4A7C15)


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme=_SCHEME).permutations
    return a.astype(np.uint32)[:, None], b.astype(np.uint32)[:, None]


@lru_cache(maxsize=8)
def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band): the most rows per band (fewest false candidates) whose probability of
    making a pair at `threshold` a candidate, 1 - (1 - t^r)^b, is at least 0.98."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= _MIN_RECALL_AT_THRESHOLD:
            return bands, rows
    return num_perm, 1


def _fmix32(h: np.ndarray) -> np.ndarray:
    # MurmurHash3's finalizer, as datasketch applies it before its affine32 permutations.
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def gram_hashes(key: str, n: int) -> np.ndarray:
    """32-bit hashes of the character n-grams of `key` (the whole key when it is shorter than n), vectorized."""
    codes = np.frombuffer(key.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if codes.size == 0:
        return np.empty(0, dtype=np.uint32)
    if codes.size <= n:
        n = codes.size
    width = codes.size - n + 1
    h = np.zeros(width, dtype=np.uint64)
    for k in range(n):
        h = h * _POLY + codes[k : k + width]
    h = (h ^ (h >> np.uint64(31))) * _MIX
    return (h >> np.uint64(32)).astype(np.uint32)


def _values(sig: LeanMinHash | np.ndarray) -> np.ndarray:
    return sig if isinstance(sig, np.ndarray) else sig.hashvalues


class NearDuplicateIndex:
    """Add texts under keys; ask which earlier texts a new one nearly duplicates."""

    def __init__(self, rule: NearDuplicateRule, seed: int = 1):
        self.rule = rule
        self.seed = seed
        self.bands, self.rows = lsh_bands(rule.threshold, rule.num_perm)
        self._tables: list[dict[int, int | list[int]]] = [{} for _ in range(self.bands)]
        self._matrix = np.empty((1024, rule.num_perm), dtype=np.uint32)
        self._keys: list[Hashable] = []
        self._position: dict[Hashable, int] = {}

    def signature_values(self, text: str) -> np.ndarray:
        """The MinHash values (uint32, one per permutation) of `text`'s normalized character n-grams."""
        grams = gram_hashes(dedup_key(text), self.rule.ngram)
        if grams.size == 0:
            return np.full(self.rule.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        a, b = _permutations(self.rule.num_perm, self.seed)
        return (a * _fmix32(grams)[None, :] + b).min(axis=1)

    def signature(self, text: str) -> LeanMinHash:
        return LeanMinHash(seed=self.seed, hashvalues=self.signature_values(text), scheme=_SCHEME)

    def _band_keys(self, values: np.ndarray) -> list[int]:
        r = self.rows
        return [hash(values[i * r : (i + 1) * r].tobytes()) for i in range(self.bands)]

    def query(self, text: str, signature: LeanMinHash | np.ndarray | None = None) -> list[tuple[Hashable, float]]:
        """Earlier keys whose estimated Jaccard similarity with `text` reaches the threshold, most similar first."""
        values = _values(signature) if signature is not None else self.signature_values(text)
        candidates: set[int] = set()
        for table, band in zip(self._tables, self._band_keys(values), strict=True):
            hit = table.get(band)
            if hit is not None:
                candidates.update(hit) if isinstance(hit, list) else candidates.add(hit)
        if not candidates:
            return []
        positions = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
        sims = np.count_nonzero(self._matrix[positions] == values, axis=1) / self.rule.num_perm
        found = [(self._keys[p], float(s)) for p, s in zip(positions, sims, strict=True) if s >= self.rule.threshold]
        return sorted(found, key=lambda kv: -kv[1])

    def add(self, key: Hashable, text: str, signature: LeanMinHash | np.ndarray | None = None) -> np.ndarray:
        values = _values(signature) if signature is not None else self.signature_values(text)
        if key in self._position:
            raise ValueError(f"key {key!r} is already in the index")
        pos = len(self._keys)
        if pos == len(self._matrix):
            self._matrix = np.concatenate([self._matrix, np.empty_like(self._matrix)])
        self._matrix[pos] = values
        self._keys.append(key)
        self._position[key] = pos
        for table, band in zip(self._tables, self._band_keys(values), strict=True):
            hit = table.get(band)
            if hit is None:
                table[band] = pos
            elif isinstance(hit, list):
                hit.append(pos)
            else:
                table[band] = [hit, pos]
        return values

    def __contains__(self, key: Hashable) -> bool:
        return key in self._position

    def __len__(self) -> int:
        return len(self._keys)


def similarity(a: LeanMinHash | np.ndarray, b: LeanMinHash | np.ndarray) -> float:
    va, vb = _values(a), _values(b)
    return float(np.count_nonzero(va == vb)) / len(va)


def near_duplicate_clusters(texts: Sequence[str], rule: NearDuplicateRule) -> list[list[int]]:
    """Groups of indices whose texts nearly duplicate each other (transitively); singletons omitted.
    Each cluster is sorted, so its first index is the earliest row."""
    index = NearDuplicateIndex(rule)
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, text in enumerate(texts):
        sig = index.signature_values(text)
        for j, _ in index.query(text, sig):
            ri, rj = find(i), find(int(j))
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
        index.add(i, text, sig)

    clusters: dict[int, list[int]] = {}
    for i in range(len(texts)):
        clusters.setdefault(find(i), []).append(i)
    return [sorted(c) for c in clusters.values() if len(c) > 1]


def cross_matches(groups: dict[str, Iterable[str]], rule: NearDuplicateRule) -> list[dict]:
    """Near duplicates that straddle two named groups (e.g. train/val/test): the leak check."""
    index = NearDuplicateIndex(rule)
    leaks = []
    for name, texts in groups.items():
        sigs = []
        for i, text in enumerate(texts):
            sig = index.signature_values(text)
            for (other, j), sim in index.query(text, sig):
                if other != name:
                    leaks.append({"a": {"split": other, "index": j}, "b": {"split": name, "index": i},
                                  "similarity": round(sim, 4)})
            sigs.append((i, sig))
        for i, sig in sigs:
            index.add((name, i), "", sig)
    return leaks
