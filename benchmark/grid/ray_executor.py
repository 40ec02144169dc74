"""Jobs as Ray core tasks: each cell (or a method's one-off work) is one task declaring the CPUs and GPUs a cell
needs. Ray places the tasks on the cluster's nodes and retries a task whose worker or node dies; the driver
(`benchmark.grid.runner`) still decides what runs next and writes every record. Ray is optional
(`pip install 'fewshot-bench[ray]'`), so it is imported only here, when a run asks for it. docs/cluster.md: a run
on several machines, step by step.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys

from benchmark.errors import UsageError
from benchmark.grid.execute import Job
from benchmark.grid.executors import Outcome, WorkerFault

MAX_RETRIES = 2  # a task whose worker or node died runs at most this many times more; then its cell has failed


class RayCluster:
    """The `benchmark.grid.executors.Executor` protocol on a Ray cluster: connects to `address` (else $RAY_ADDRESS; with
    neither, starts a local cluster for the run), or uses this process's connection if it already has one."""

    def __init__(self, address: str | None, cpus_per_cell: int, gpus_per_cell: float) -> None:
        import ray

        self._connected_here = not ray.is_initialized()
        if self._connected_here:
            connect(address)
        self._cpus = cpus_per_cell
        self._running: dict = {}  # ObjectRef -> the Job it runs
        try:
            self.slots = cells_at_once(ray.nodes(), cpus_per_cell, gpus_per_cell)
        except UsageError:
            self.close()
            raise
        self._task = ray.remote(num_cpus=cpus_per_cell, num_gpus=gpus_per_cell, max_retries=MAX_RETRIES)(_run)

    def submit(self, job: Job) -> None:
        # a task may land on any node and holds only the CPUs it declared: it never takes the free threads the
        # scheduler gives a job that runs alone on this machine
        ref = self._task.remote(dataclasses.replace(job, threads=self._cpus))
        self._running[ref] = job

    def wait(self, timeout: float) -> list[Outcome]:
        import ray

        if not self._running:
            return []
        ready, _ = ray.wait(list(self._running), num_returns=1, timeout=timeout)
        if ready:  # and every other task that has ended meanwhile, in no particular order
            ready, _ = ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
        return [self._outcome(ref) for ref in ready]

    def _outcome(self, ref) -> Outcome:
        import ray

        job = self._running.pop(ref)
        try:
            return Outcome(job, ray.get(ref))
        except ray.exceptions.RayTaskError as exc:  # the job raised outside the method's code (its own is a record)
            return Outcome(job, WorkerFault(str(exc)))
        except ray.exceptions.RayError as exc:  # the worker or node died (out of memory, a crash) on every try
            return Outcome(job, lost=f"the Ray worker running it died ({type(exc).__name__})", retried=True)

    def cancel(self) -> None:
        import ray

        for ref in self._running:
            ray.cancel(ref, force=True)  # kills the worker process at once: a cell may be deep in torch code
        self._running.clear()

    def close(self) -> None:
        import ray

        self.cancel()
        if self._connected_here:
            ray.shutdown()  # stops a local cluster started for the run; only disconnects from any other


def connect(address: str | None = None, **local) -> None:
    """Connect this process to the cluster at `address`, else at $RAY_ADDRESS; with neither, start a local cluster
    with `local` (ray.init's arguments: `num_cpus=2` in the tests). Quiet: no dashboard, no worker output."""
    import ray

    # Ray retries a task its memory monitor killed without limit by default (Ray 2.60), apart from max_retries; the
    # driver owns the tasks, so its setting bounds them on any cluster
    os.environ.setdefault("RAY_task_oom_retries", str(MAX_RETRIES))
    address = address or os.environ.get("RAY_ADDRESS")
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, ray.exceptions.RayError) as exc:
            raise UsageError(
                f"cannot connect to the Ray cluster at {address} ({exc}); a cluster with token authentication also "
                "needs RAY_AUTH_MODE=token and its token here (docs/cluster.md)"
            ) from None
        return
    # A local cluster's workers start in this folder but with a fresh sys.path: give them this process's, so they
    # import the code it imports (this checkout, a test module, a script's own methods).
    paths = [os.path.abspath(p or os.curdir) for p in sys.path if os.path.exists(p or os.curdir)]
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}
    ray.init(address="local", include_dashboard=False, runtime_env=runtime_env, **quiet, **local)


def cells_at_once(nodes: list[dict], cpus_per_cell: int, gpus_per_cell: float) -> int:
    """How many cells the cluster runs at once (`nodes`: `ray.nodes()`): on each live node, as many as its CPUs and
    GPUs hold."""
    live = [node["Resources"] for node in nodes if node["Alive"]]
    slots = sum(_cells_on(have, cpus_per_cell, gpus_per_cell) for have in live)
    if slots == 0:  # Ray would hold every task, waiting for a node that can take one
        largest = max(live, key=lambda have: (have.get("GPU", 0), have.get("CPU", 0)), default={})
        raise UsageError(
            f"no node of the Ray cluster can run a cell with --cpus-per-cell {cpus_per_cell} and --gpus-per-cell "
            f"{gpus_per_cell:g} (its largest has {largest.get('CPU', 0):g} CPUs and {largest.get('GPU', 0):g} GPUs)"
        )
    return slots


def _cells_on(have: dict[str, float], cpus: int, gpus: float) -> int:
    cells = math.floor(have.get("CPU", 0) / cpus)
    if gpus:
        cells = min(cells, math.floor(have.get("GPU", 0) / gpus + 1e-9))  # 1 GPU holds 10 cells of 0.1, not 9
    return cells


def _run(job: Job):
    """The task: one job in a Ray worker process. A CPU task's worker is kept for the next tasks, with what it
    loaded; Ray starts a fresh one for each GPU task (its default, so that the GPU memory is given back)."""
    return job.run()
