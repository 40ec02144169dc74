"""The driver of a grid: it asks the scheduler what runs next, hands jobs to an executor, and passes each
record to the caller (the only writer of the run folder) as its cell ends. A failure inside a cell is a record,
never an exception; a worker that dies is the scheduler's to retry or fail; a first Ctrl-C lets running jobs
finish and starts nothing new, a second stops them at once.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable

from benchmark.errors import Terminated
from benchmark.grid.execute import CELL, Job, has_one_off_work, new_record
from benchmark.grid.executors import Executor, Outcome, WorkerFault
from benchmark.grid.plan import Cell, Plan
from benchmark.grid.scheduler import GridState
from benchmark.record import Record

OnRecord = Callable[[Record, "str | None"], None]
OnOneOff = Callable[[Job, float], None]  # one-off work ended: its job (threads included) and its seconds


class Watcher:
    """Told when a job starts and ends (a display of what is running); does nothing by default."""

    def started(self, job: Job) -> None: ...

    def ended(self, job: Job) -> None: ...


class WorkerDied(RuntimeError):
    """The process running a cell died twice under it, the second time alone (most often out of memory)."""


class HarnessFault(RuntimeError):
    """A job raised outside the method's own code."""


class StopRequest:
    """First Ctrl-C (SIGINT) or SIGTERM: finish the running jobs, then stop. A second of either: abort at once
    (KeyboardInterrupt). SIGTERM is what `kill`, systemd, Docker and cluster schedulers send before they kill."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_first: Callable[[signal.Signals], None] = lambda by: None) -> None:
        self.requested = False
        self.by: signal.Signals | None = None  # the signal that asked first
        self._on_first = on_first

    def __enter__(self) -> StopRequest:
        self._previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        self.requested, self.by = True, signal.Signals(signum)
        self._on_first(self.by)

    def __exit__(self, *exc) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)


def run_grid(
    plan: Plan,
    cells: list[Cell],
    executor: Executor,
    stop: StopRequest,
    on_record: OnRecord,
    on_one_off: OnOneOff = lambda job, seconds: None,
    watcher: Watcher | None = None,
) -> None:
    """Run `cells` (and their methods' one-off work) until done or a stop is requested."""
    total = plan.settings.threads * executor.slots
    state = GridState.of(cells, has_one_off_work, plan.settings.threads, total)
    watcher = watcher or Watcher()
    try:
        while not state.done:
            _fill(state, executor, stop, watcher)
            if not state.busy:
                return  # stopped: nothing running, nothing started
            for outcome in executor.wait(timeout=0.5):
                watcher.ended(outcome.job)
                _handle(outcome, state, on_record, on_one_off)
    except KeyboardInterrupt:
        executor.cancel()
        raise


def _fill(state: GridState, executor: Executor, stop: StopRequest, watcher: Watcher) -> None:
    while len(state.running) + len(state.working) < executor.slots and not stop.requested:
        job = state.next_job()
        if job is None:
            return
        state.started(job)
        executor.submit(job)
        watcher.started(job)


def _handle(outcome: Outcome, state: GridState, on_record: OnRecord, on_one_off: OnOneOff) -> None:
    job = outcome.job
    if job.kind != CELL:
        seconds = outcome.result if isinstance(outcome.result, float) else None
        state.finished_one_off(job.cell, seconds)
        if seconds is not None:
            on_one_off(job, seconds)
        return
    if outcome.lost:
        if state.lost_cell(job.cell, retried=outcome.retried):
            how = "each time it was retried" if outcome.retried else "twice, the second time alone"
            on_record(_failed(job, WorkerDied(f"{outcome.lost}, {how}")), None)
        return
    if isinstance(outcome.result, WorkerFault):
        record, trace = _failed(job, HarnessFault("the job raised outside the method")), outcome.result.traceback
    else:
        record, trace = outcome.result
    on_record(charged(record, state.finished_cell(record)), trace)


def charged(record: Record, one_off_seconds: float | None) -> Record:
    """The record with the one-off seconds its method spent in a job of their own added to its `shared_seconds`
    (the time this run spent on one-off work, charged to this cell); the record itself as it is when nothing is
    owed. The scheduler says what is owed to which record; this is where it is charged, once."""
    if one_off_seconds is None:
        return record
    return dataclasses.replace(record, shared_seconds=(record.shared_seconds or 0.0) + one_off_seconds)


def _failed(job: Job, error: Exception) -> Record:
    return new_record(job.cell).fail(error).finish()
