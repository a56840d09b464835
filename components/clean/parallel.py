"""Runs RowPreparer batches in `clean.workers` worker processes, results back in input order, with bounded
read-ahead; with 0 workers, in this process.

Inputs under MIN_ROWS_FOR_WORKERS rows stay in this process whatever the setting: starting workers would
cost more than it saves. Above it, the number of processes is the configured one, so the cost per row
does not change with the input's size. Workers are forked, so they inherit the preparer (config, schema)
without pickling it.
"""

from __future__ import annotations

import multiprocessing
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


def batched(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


class Workers:
    """A pool of `processes` preparer processes, started on the first input large enough to need it; none
    (work in this process) when `processes` is 0."""

    def __init__(self, preparer: RowPreparer, processes: int):
        self.preparer, self.processes, self.pool = preparer, processes, None

    @property
    def started(self) -> int:
        """How many worker processes ran (0 when the work stayed in this process)."""
        return self.processes if self.pool is not None else 0

    def _start(self) -> None:
        if self.pool is None:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            self.pool = ctx.Pool(self.processes, initializer=_init, initargs=(self.preparer,))

    def _ordered(self, fn: Callable[[list], Any], local: Callable[[list], Any],
                 batches: Iterator[list]) -> Iterator[Any]:
        """Each batch's result, in input order."""
        if self.processes == 0:
            yield from map(local, batches)
            return
        head = list(islice(batches, MIN_ROWS_FOR_WORKERS // BATCH))
        if sum(map(len, head)) < MIN_ROWS_FOR_WORKERS and self.pool is None:
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
