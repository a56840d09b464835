"""Runs RowPreparer batches in worker processes, results back in input order, with bounded read-ahead.

Small inputs (a few thousand rows) stay in this process: starting workers would cost more than it saves.
Workers are forked, so they inherit the preparer (config, schema, tagger) without pickling it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import chain, islice
from typing import Any, TypeVar

from components.clean.prepare import Outcome, Recheck, RowPreparer

T = TypeVar("T")
BATCH = 512
# Below this many rows the work stays in-process.
MIN_ROWS_FOR_WORKERS = 8 * BATCH

_PREPARER: RowPreparer | None = None  # set in each worker by _init


def _init(preparer: RowPreparer) -> None:
    global _PREPARER
    _PREPARER = preparer


def _prepare(batch):
    return _PREPARER(batch)


def _recheck(lines):
    return _PREPARER.recheck(lines)


def worker_count(configured: int) -> int:
    """clean.workers: 0 means one per idle CPU core (cores minus the 1-minute load average), at most 4.
    Workers cost about a quarter more CPU in all (rows and results cross process boundaries), which pays
    only when cores are free; on a busy machine one process is faster."""
    if configured > 0:
        return configured
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    idle = cores - os.getloadavg()[0]
    return max(1, min(4, int(idle + 0.5)))


def batched(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


class Workers:
    """A pool of preparer processes, or none (work in this process) when `count` is 1."""

    def __init__(self, preparer: RowPreparer, count: int):
        self.preparer, self.count, self.pool = preparer, count, None

    def _start(self) -> None:
        if self.pool is None:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            self.pool = ctx.Pool(self.count, initializer=_init, initargs=(self.preparer,))

    def _ordered(self, fn: Callable[[list], Any], local: Callable[[list], Any],
                 batches: Iterator[list]) -> Iterator[tuple[list, Any]]:
        """(batch, result) pairs in input order."""
        if self.count <= 1:
            for batch in batches:
                yield batch, local(batch)
            return
        head = list(islice(batches, MIN_ROWS_FOR_WORKERS // BATCH))
        if len(head) < MIN_ROWS_FOR_WORKERS // BATCH and self.pool is None:
            for batch in head:
                yield batch, local(batch)
            return
        self._start()
        pending: deque = deque()
        for batch in chain(head, batches):
            pending.append((batch, self.pool.apply_async(fn, (batch,))))
            if len(pending) >= 2 * self.count + 2:  # bounded read-ahead: memory stays flat
                batch, result = pending.popleft()
                yield batch, result.get()
        while pending:
            batch, result = pending.popleft()
            yield batch, result.get()

    def prepare(self, rows: Iterable) -> Iterator[Outcome]:
        """Each row's Outcome in input order, with (for rows that go on) its signature and bands. `raw` is the
        row as read (a SourceRow, or a RawLine to parse again if the row is rejected): the raw content does
        not travel back from the workers."""
        for batch, (outcomes, matrix, bands) in self._ordered(_prepare, self.preparer, batched(rows)):
            for item, outcome in zip(batch, outcomes, strict=True):
                if outcome.rule is None:
                    j = outcome.signature
                    yield outcome._replace(raw=item, signature=matrix[j], bands=bands[j])
                else:
                    yield outcome._replace(raw=item)

    def recheck(self, lines: Iterable[str]) -> Iterator[Recheck]:
        for _, result in self._ordered(_recheck, self.preparer.recheck, batched(lines, 2 * BATCH)):
            yield result


@contextmanager
def workers(preparer: RowPreparer, count: int) -> Iterator[Workers]:
    pool = Workers(preparer, count)
    try:
        yield pool
    finally:
        if pool.pool is not None:
            pool.pool.terminate()
            pool.pool.join()
