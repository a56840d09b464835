"""Near-duplicate detection: MinHash LSH over character n-grams (datasketch).

Character n-grams suit Japanese, which has no spaces to split words on. The LSH index proposes
candidates in sub-quadratic time; each candidate is then confirmed by the Jaccard similarity estimated
from the two MinHash signatures, so the threshold means what it says. Used by clean (one survivor per
cluster) and split (no near duplicate across train/val/test).
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Iterable, Sequence

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from components.common.config import NearDuplicateRule
from components.common.text import char_ngrams, dedup_key


def _crc32(data: bytes) -> int:
    # Deterministic across processes (unlike hash()) and far cheaper than datasketch's default sha1.
    return zlib.crc32(data)


class NearDuplicateIndex:
    """Add texts under keys; ask which earlier texts a new one nearly duplicates."""

    def __init__(self, rule: NearDuplicateRule, seed: int = 1):
        self.rule = rule
        self.seed = seed
        self._lsh = MinHashLSH(threshold=rule.threshold, num_perm=rule.num_perm)
        self._signatures: dict[Hashable, LeanMinHash] = {}

    def signature(self, text: str) -> LeanMinHash:
        grams = char_ngrams(dedup_key(text), self.rule.ngram)
        m = MinHash(num_perm=self.rule.num_perm, seed=self.seed, hashfunc=_crc32)
        if grams:
            m.update_batch([g.encode("utf-8") for g in grams])
        return LeanMinHash(m)

    def query(self, text: str, signature: LeanMinHash | None = None) -> list[tuple[Hashable, float]]:
        """Earlier keys whose estimated Jaccard similarity with `text` reaches the threshold, most similar first."""
        sig = signature if signature is not None else self.signature(text)
        found = []
        for key in self._lsh.query(sig):
            sim = similarity(sig, self._signatures[key])
            if sim >= self.rule.threshold:
                found.append((key, sim))
        return sorted(found, key=lambda kv: -kv[1])

    def add(self, key: Hashable, text: str, signature: LeanMinHash | None = None) -> LeanMinHash:
        sig = signature if signature is not None else self.signature(text)
        self._lsh.insert(key, sig)
        self._signatures[key] = sig
        return sig

    def __contains__(self, key: Hashable) -> bool:
        return key in self._signatures

    def __len__(self) -> int:
        return len(self._signatures)


def similarity(a: LeanMinHash, b: LeanMinHash) -> float:
    return float(np.count_nonzero(a.hashvalues == b.hashvalues)) / len(a.hashvalues)


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
        sig = index.signature(text)
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
            sig = index.signature(text)
            for (other, j), sim in index.query(text, sig):
                if other != name:
                    leaks.append({"a": {"split": other, "index": j}, "b": {"split": name, "index": i},
                                  "similarity": round(sim, 4)})
            sigs.append((i, sig))
        for i, sig in sigs:
            index.add((name, i), "", sig)
    return leaks
