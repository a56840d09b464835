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

from components.common.settings.rules import NearDuplicateRule
from components.common.text import dedup_key

_SCHEME = "affine32"
# Candidate recall wanted at the threshold itself; higher above it.
_MIN_RECALL_AT_THRESHOLD = 0.98
_POLY = np.uint64(0x100000001B3)  # FNV prime: odd, mixes code points of one n-gram into 64 bits
_MIX = np.uint64(0x9E3779B97F4A7C15)
_CHUNK_GRAMS = 16384  # n-grams hashed per numpy pass in signature_matrix (a 128 x 16384 uint32 block: 8 MiB)


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
        coefficients = np.random.default_rng(seed).integers(0, 2**63, size=self.rows, dtype=np.uint64)
        self._band_coefficients = coefficients * np.uint64(2) + np.uint64(1)
        self._tables: list[dict[int, int | list[int]]] = [{} for _ in range(self.bands)]
        self._matrix = np.empty((1024, rule.num_perm), dtype=np.uint32)
        self._keys: list[Hashable] = []
        self._position: dict[Hashable, int] = {}

    def signature_values(self, text: str, key: str | None = None) -> np.ndarray:
        """The MinHash values (uint32, one per permutation) of `text`'s normalized character n-grams.
        `key`: `dedup_key(text)` when the caller already has it."""
        grams = gram_hashes(dedup_key(text) if key is None else key, self.rule.ngram)
        if grams.size == 0:
            return np.full(self.rule.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        a, b = _permutations(self.rule.num_perm, self.seed)
        return (a * _fmix32(grams)[None, :] + b).min(axis=1)

    def signature_matrix(self, keys: Sequence[str]) -> np.ndarray:
        """`signature_values` of many texts at once, given their `dedup_key`s: one row per text. The same
        values, with numpy's per-call overhead paid once per chunk of texts instead of once per text."""
        out = np.empty((len(keys), self.rule.num_perm), dtype=np.uint32)
        a, b = _permutations(self.rule.num_perm, self.seed)
        grams = [gram_hashes(k, self.rule.ngram) for k in keys]
        start = 0
        while start < len(keys):
            stop, total = start, 0
            while stop < len(keys) and (total == 0 or total + grams[stop].size <= _CHUNK_GRAMS):
                total += grams[stop].size
                stop += 1
            chunk = grams[start:stop]
            sizes = np.fromiter((g.size for g in chunk), dtype=np.int64, count=len(chunk))
            if total:
                hashed = a * _fmix32(np.concatenate(chunk))[None, :] + b
                starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
                nonempty = sizes > 0
                block = np.full((len(chunk), self.rule.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
                block[nonempty] = np.minimum.reduceat(hashed, starts[nonempty], axis=1).T
                out[start:stop] = block
            else:
                out[start:stop] = np.iinfo(np.uint32).max
            start = stop
        return out

    def band_keys_matrix(self, matrix: np.ndarray) -> list[list[int]]:
        """The LSH band keys of many signatures at once (see `_band_keys`)."""
        bands = matrix[:, : self.bands * self.rows].reshape(len(matrix), self.bands, self.rows).astype(np.uint64)
        return (bands * self._band_coefficients).sum(axis=2).tolist()

    def signature(self, text: str) -> LeanMinHash:
        return LeanMinHash(seed=self.seed, hashvalues=self.signature_values(text), scheme=_SCHEME)

    def _band_keys(self, values: np.ndarray) -> list[int]:
        # One 64-bit hash per band: a random odd-coefficient linear combination of its values (mod 2^64).
        # A collision only adds a candidate, which the similarity check then drops.
        bands = values[: self.bands * self.rows].reshape(self.bands, self.rows).astype(np.uint64)
        return (bands * self._band_coefficients).sum(axis=1).tolist()

    def query(self, text: str, signature: LeanMinHash | np.ndarray | None = None) -> list[tuple[Hashable, float]]:
        """Earlier keys whose estimated Jaccard similarity with `text` reaches the threshold, most similar first."""
        values = _values(signature) if signature is not None else self.signature_values(text)
        return self._query(values, self._band_keys(values))

    def query_and_add(self, key: Hashable, text: str, signature: np.ndarray | None = None,
                      add_if_new: bool = True, bands: list[int] | None = None) -> list[tuple[Hashable, float]]:
        """`query`, then `add` under `key` when nothing matched; hashes the bands once for both
        (`bands`: from `band_keys_matrix`, when the caller already has them)."""
        values = _values(signature) if signature is not None else self.signature_values(text)
        if bands is None:
            bands = self._band_keys(values)
        found = self._query(values, bands)
        if not found and add_if_new:
            self._add(key, values, bands)
        return found

    def _query(self, values: np.ndarray, bands: list[int]) -> list[tuple[Hashable, float]]:
        candidates: set[int] = set()
        for table, band in zip(self._tables, bands, strict=True):
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
        self._add(key, values, self._band_keys(values))
        return values

    def _add(self, key: Hashable, values: np.ndarray, bands: list[int]) -> None:
        if key in self._position:
            raise ValueError(f"key {key!r} is already in the index")
        pos = len(self._keys)
        if pos == len(self._matrix):
            self._matrix = np.concatenate([self._matrix, np.empty_like(self._matrix)])
        self._matrix[pos] = values
        self._keys.append(key)
        self._position[key] = pos
        for table, band in zip(self._tables, bands, strict=True):
            hit = table.get(band)
            if hit is None:
                table[band] = pos
            elif isinstance(hit, list):
                hit.append(pos)
            else:
                table[band] = [hit, pos]

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
