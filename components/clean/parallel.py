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

from components.clean.prepare import Prepared, Recheck, RowPreparer

T = TypeVar("T")
BATCH = 512
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
    """A pool of preparer processes, or none (work in this process) when `processes` is 1."""

    def __init__(self, preparer: RowPreparer, processes: int):
        self.preparer, self.processes, self.pool = preparer, processes, None

    def _start(self) -> None:
        if self.pool is None:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            self.pool = ctx.Pool(self.processes, initializer=_init, initargs=(self.preparer,))

    def _ordered(self, fn: Callable[[list], Any], local: Callable[[list], Any],
                 batches: Iterator[list]) -> Iterator[Any]:
        """Each batch's result, in input order."""
        if self.processes <= 1:
            yield from map(local, batches)
            return
        head = list(islice(batches, MIN_ROWS_FOR_WORKERS // BATCH))
        if len(head) < MIN_ROWS_FOR_WORKERS // BATCH and self.pool is None:
            yield from map(local, head)
            return
        self._start()
        pending: deque = deque()
        for batch in chain(head, batches):
            pending.append(self.pool.apply_async(fn, (batch,)))
            if len(pending) >= 2 * self.processes + 2:  # bounded read-ahead: memory stays flat
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def prepare(self, rows: Iterable) -> Iterator[Prepared]:
        """The prepared batches of `rows`, in input order."""
        return self._ordered(_prepare, self.preparer, batched(rows))

    def recheck(self, lines: Iterable[str]) -> Iterator[Recheck]:
        return self._ordered(_recheck, self.preparer.recheck, batched(lines, 2 * BATCH))


@contextmanager
def workers(preparer: RowPreparer, processes: int) -> Iterator[Workers]:
    pool = Workers(preparer, processes)
    try:
        yield pool
    finally:
        if pool.pool is not None:
            pool.pool.terminate()
            pool.pool.join()
