"""What runs next: a pure description of a grid's progress, with no processes, files or clocks in it.

The rules, in order:
- A cell that was running when its worker died runs again alone (a cell that ran out of memory only beside
  another may pass alone); if it dies alone it failed.
- One-off work (a method's `precompute`: frozen features, an adapted encoder) goes first, one such task at a
  time, so that two workers never build the same shared artifact; the method's cells wait for it.
- Then a cell of the earliest budget and seed still pending (an interrupted grid has comparable rows: every
  method and dataset at the small budgets and first seeds), of the method whose finished cells took longest (a
  method not yet timed first): every worker stays busy to the end instead of one finishing a long cell alone.
- A task that nothing else can run beside, now or before it ends, gets every free thread: a lone cell, the
  last cells of a grid, one-off work that every pending cell waits for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from benchmark.grid.execute import CELL, ONE_OFF, Job
from benchmark.grid.plan import Cell


def one_off_key(cell: Cell) -> tuple[str, str]:
    """One-off work is per dataset and method configuration (one configuration per method name in a run)."""
    return cell.dataset_fingerprint, cell.method.name


@dataclass
class GridState:
    pending: list[Cell]
    waiting: dict[tuple[str, str], Cell]  # one-off work not started yet, by `one_off_key`
    threads: int  # torch threads of one worker
    total_threads: int  # threads of the whole run
    working: dict[tuple[str, str], int] = field(default_factory=dict)  # one-off work in progress -> its threads
    running: dict[str, tuple[Cell, int]] = field(default_factory=dict)  # cell key -> (cell, threads)
    seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (method, budget) -> cell seconds
    suspects: set[str] = field(default_factory=set)  # keys of cells whose worker died under them
    charged: dict[tuple[str, str], float] = field(default_factory=dict)  # one-off seconds owed to a record

    @classmethod
    def of(cls, cells: list[Cell], has_one_off: Callable[[Cell], bool], threads: int, total: int) -> GridState:
        waiting: dict[tuple[str, str], Cell] = {}
        for cell in cells:
            if has_one_off(cell):
                waiting.setdefault(one_off_key(cell), cell)
        return cls(list(cells), waiting, threads, total)

    @property
    def busy(self) -> bool:
        return bool(self.running or self.working)

    @property
    def done(self) -> bool:
        return not (self.pending or self.waiting or self.busy)

    def next_job(self) -> Job | None:
        """The job a free worker starts now, or None if nothing can start until something finishes."""
        picked = self._next()
        if picked is None:
            return None
        kind, cell = picked
        threads = self.threads
        if self._alone_after(kind, cell):
            threads = max(threads, self.total_threads - self._threads_in_use())
        return Job(kind, cell, threads)

    def started(self, job: Job) -> None:
        if job.kind == ONE_OFF:
            key = one_off_key(job.cell)
            del self.waiting[key]
            self.working[key] = job.threads
        else:
            self.pending.remove(job.cell)
            self.running[job.cell.key] = (job.cell, job.threads)

    def finished_one_off(self, cell: Cell, seconds: float | None) -> None:
        """One-off work ended (`seconds` None: its worker died; the method's cells then try it themselves)."""
        key = one_off_key(cell)
        self.working.pop(key, None)
        if seconds is not None:
            self.charged[key] = self.charged.get(key, 0.0) + seconds

    def finished_cell(self, record) -> float | None:
        """A cell's record came back. Returns the one-off seconds its method spent in a task of their own, owed
        to the method's first ok record as when a cell does the work itself (None: nothing owed); the record is
        only read: the runner charges it."""
        cell, _ = self.running.pop(record.cell)
        self.suspects.discard(cell.key)
        if not record.ok:
            return None
        self.seconds.setdefault((cell.method.name, str(cell.budget)), []).append(
            record.train_seconds + record.predict_seconds
        )
        return self.charged.pop(one_off_key(cell), None)

    def lost_cell(self, cell: Cell, retried: bool = False) -> bool:
        """The worker running `cell` died. True: the cell failed (it died alone before, or the executor already
        retried it); False: it runs again, alone."""
        self.running.pop(cell.key, None)
        if retried or cell.key in self.suspects:
            self.suspects.discard(cell.key)
            return True
        self.suspects.add(cell.key)
        self.pending.insert(0, cell)
        return False

    def _next(self) -> tuple[str, Cell] | None:
        running = [cell for cell, _ in self.running.values()]
        if any(cell.key in self.suspects for cell in running):
            return None
        suspect = next((cell for cell in self.pending if cell.key in self.suspects), None)
        if suspect is not None:
            return (CELL, suspect) if not self.busy else None
        if self.waiting and not self.working:
            return ONE_OFF, next(iter(self.waiting.values()))
        ready = self._ready()
        return (CELL, next_cell(ready, self.seconds)) if ready else None

    def _ready(self, excluding: Iterable[Cell] = ()) -> list[Cell]:
        excluded = {cell.key for cell in excluding}
        blocked = set(self.waiting) | set(self.working)
        return [c for c in self.pending if one_off_key(c) not in blocked and c.key not in excluded]

    def _alone_after(self, kind: str, cell: Cell) -> bool:
        """Whether nothing else can start beside this job before it ends: no other cell is ready, and every
        pending cell waits for this very job (one-off work) or there is none."""
        if kind == ONE_OFF:
            others = [c for c in self.pending if one_off_key(c) != one_off_key(cell)]
            return not others and len(self.waiting) == 1
        return not self.waiting and not self.working and not self._ready(excluding=[cell])

    def _threads_in_use(self) -> int:
        return sum(threads for _, threads in self.running.values()) + sum(self.working.values())


def next_cell(pending: list[Cell], seconds: dict[tuple[str, str], list[float]]) -> Cell:
    """Of the earliest budget and seed still pending (plan order is budget, seed, dataset, method), the cell of
    the method whose finished cells took longest (at this budget if any finished, else at any), a method not yet
    timed first; plan order among equals. Longest-first within one seed is what keeps workers busy at the end,
    where the last seed's cells are shared out; across seeds it would only run one method's cells of every seed
    before another method's first."""

    def expected(cell: Cell) -> float:
        here = seconds.get((cell.method.name, str(cell.budget)))
        anywhere = [s for (method, _), values in seconds.items() if method == cell.method.name for s in values]
        return float(np.mean(here or anywhere)) if anywhere else float("inf")

    first = pending[0]
    return max((c for c in pending if (c.budget, c.seed) == (first.budget, first.seed)), key=expected)
