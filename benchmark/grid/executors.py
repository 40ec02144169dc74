"""Where jobs run. An executor takes a `Job` (plain configuration, never live objects) and gives back its
result; the driver (`benchmark.grid.runner`) decides what runs next and is the only writer of the run folder.

- `InProcess`: one job at a time in this process.
- `LocalProcesses`: N worker processes on this machine, each with its own pipe, so a worker that dies (the
  kernel's out-of-memory killer) is known by name: its job is reported lost, the worker is replaced, and the
  other workers go on.
A third, `benchmark.grid.ray_executor.RayCluster`, runs jobs as tasks on a Ray cluster.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for
from typing import Any, Protocol

from benchmark import progress
from benchmark.grid.execute import Job


@dataclass
class Outcome:
    job: Job
    result: Any = None  # a cell: (record, traceback text or None); one-off work: its seconds
    lost: str | None = None  # why no result came back (the worker died), or None
    retried: bool = False  # the executor already retried the job (Ray): a lost cell has failed


ProgressSink = Callable[[Job, str, int, int], None]  # (job, what, done, total)


class Executor(Protocol):
    slots: int  # jobs that can run at once
    on_progress: ProgressSink | None  # where running jobs' progress goes, if anywhere

    def submit(self, job: Job) -> None:
        """Start `job` in a free slot."""

    def wait(self, timeout: float) -> list[Outcome]:
        """The jobs that ended since the last call, waiting up to `timeout` seconds for the first."""

    def cancel(self) -> None:
        """Stop every running job now (a second Ctrl-C); their outcomes are never reported."""

    def close(self) -> None:
        """Release the slots; running jobs are not waited for."""


class InProcess:
    """Runs each job in this process when the driver waits for it."""

    slots = 1

    def __init__(self) -> None:
        self._submitted: list[Job] = []
        self.on_progress: ProgressSink | None = None

    def submit(self, job: Job) -> None:
        self._submitted.append(job)

    def wait(self, timeout: float) -> list[Outcome]:
        jobs, self._submitted = self._submitted, []
        return [Outcome(job, self._run(job)) for job in jobs]

    def _run(self, job: Job):
        sink = self.on_progress
        progress.watch((lambda what, done, total: sink(job, what, done, total)) if sink else None)
        try:
            return job.run()
        finally:
            progress.watch(None)

    def cancel(self) -> None:
        self._submitted.clear()

    def close(self) -> None:
        self.cancel()


@dataclass
class _Worker:
    process: Any  # multiprocessing.Process
    conn: Any  # the parent's end of its pipe
    job: Job | None = None


class LocalProcesses:
    """`slots` worker processes (spawned: forking after torch has started threads can deadlock), started at
    once and kept for the whole grid, so imports and loaded data serve every job a worker runs."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.on_progress: ProgressSink | None = None
        self._context = multiprocessing.get_context("spawn")
        self._workers = [self._start() for _ in range(slots)]

    def _start(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child, os.getpid()), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def submit(self, job: Job) -> None:
        worker = next(w for w in self._workers if w.job is None)
        worker.job = job
        # a worker that died while idle cannot take it: `wait` then reports the job lost, and it runs again
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, EOFError):
            worker.conn.send(job)

    def wait(self, timeout: float) -> list[Outcome]:
        busy = [w for w in self._workers if w.job is not None]
        if not busy:
            return []
        ready = set(wait_for([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
        outcomes = []
        for index, worker in enumerate(self._workers):
            if worker.job is None or not ({worker.conn, worker.process.sentinel} & ready):
                continue
            try:
                result = self._receive(worker)
            except (EOFError, ConnectionResetError, OSError):
                worker.process.join(timeout=5)
                code = worker.process.exitcode
                outcomes.append(Outcome(worker.job, lost=f"the worker process running it died (exit code {code})"))
                worker.conn.close()
                self._workers[index] = self._start()
                continue
            if result is not _RUNNING:
                outcomes.append(Outcome(worker.job, result))
                worker.job = None
        return outcomes

    def _receive(self, worker: _Worker):
        """The job's result, or _RUNNING after passing on its progress reports; EOFError if the worker is gone."""
        while worker.conn.poll():
            kind, *message = worker.conn.recv()
            if kind == "result":
                return message[0]
            if self.on_progress is not None:
                self.on_progress(worker.job, *message)
        if not worker.process.is_alive():
            raise EOFError
        return _RUNNING

    def cancel(self) -> None:
        for worker in self._workers:
            if worker.job is not None:
                worker.process.kill()  # workers ignore SIGTERM (see _serve)
                worker.job = None

    def close(self) -> None:
        for worker in self._workers:
            if worker.job is None and worker.process.is_alive():
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
        deadline = time.monotonic() + 10
        for worker in self._workers:
            if worker.job is not None:
                worker.process.kill()
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
            worker.conn.close()


_RUNNING = object()


def _serve(conn, parent: int) -> None:
    """A worker: run each job it is sent, send back ("result", result) after ("progress", what, done, total)
    reports, until told to stop (None)."""
    # the driver decides what a Ctrl-C or a SIGTERM to the whole process group stops (it may let this job finish)
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    progress.watch(lambda what, done, total: conn.send(("progress", what, done, total)))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            result = job.run()
        except Exception:  # a fault of the harness, not of a method (those are records): keep serving
            result = WorkerFault(traceback.format_exc())
        conn.send(("result", result))


@dataclass
class WorkerFault:
    """A job that raised outside the method's own code, with the traceback text."""

    traceback: str


def _exit_with_parent(parent: int) -> None:
    """A worker must not outlive its run: if the driver is killed (kill -9, a crashed terminal), the worker would
    otherwise finish its job, holding cores and memory, and then wait forever."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)
