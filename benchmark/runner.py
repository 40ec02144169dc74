"""Running the grid: cells, their keys, one cell end to end, and the loop that resumes, isolates failures and
stops cleanly on Ctrl-C.

A cell is (method with its full hyperparameters, budget, seed) on one dataset and model. Its key hashes the
dataset fingerprint, model fingerprint, method and its code revision, hyperparameters, budget, seed and
precision: a finished key is skipped on re-run, and any change to those makes a new cell.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmark import SCHEMA_VERSION, modeling, sampling
from benchmark.context import Context, FeatureStore
from benchmark.data import Task
from benchmark.metrics import classification_metrics
from benchmark.modeling import ModelSpec, seed_everything
from benchmark.registry import MethodSpec


@dataclass(frozen=True)
class Cell:
    method: str
    params: dict
    shots: int | str
    seed: int
    key: str


@dataclass
class Plan:
    """Everything a run needs, validated: built by the CLI before anything is written."""

    task: Task
    model: ModelSpec
    specs: dict[str, MethodSpec]
    overrides: dict[str, dict]
    budgets: list
    seeds: list[int]
    device: str = "cpu"
    precision: str = "fp32"
    jobs: int = 1  # cells at once, each in its own worker process when > 1
    threads: int = 1  # torch threads per process running cells
    cache_dir: Path | None = None
    cells: list[Cell] = field(init=False)

    def __post_init__(self) -> None:
        # budget-major, then seed, then method: an interrupted grid has comparable rows for every method at the
        # small budgets, and parallel workers rarely wait on the same method's one-off work
        params = {name: spec.defaults() | self.overrides.get(name, {}) for name, spec in self.specs.items()}
        self.cells = [
            Cell(name, params[name], shots, seed, self.cell_key(name, params[name], shots, seed, spec.revision))
            for shots in self.budgets
            for seed in self.seeds
            for name, spec in self.specs.items()
        ]

    def cell_key(self, method: str, params: dict, shots, seed: int, revision: int = 1) -> str:
        identity = {
            "dataset": self.task.fingerprint,
            "model": self.model.fingerprint,
            "max_length": self.model.max_length,
            "method": method,
            "params": params,
            "shots": shots,
            "seed": seed,
            "precision": self.precision,
        }
        if revision != 1:  # revision 1 is the code from before revisions were counted: its keys stay valid
            identity["revision"] = revision
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def preload(self) -> None:
        """Imports before the first cell, so its timing is the cell's own. A failure here is left for the
        cells to meet and record."""
        with contextlib.suppress(Exception):
            modeling.preload(self.model, [p for spec in self.specs.values() for p in spec.requires])

    def context(self, seed: int, features: FeatureStore | None) -> Context:
        """What a method sees of the run: model, labels, seed, device, the unlabelled pool and the caches."""
        return Context(
            self.model,
            self.task.num_labels,
            seed,
            self.device,
            self.precision,
            unlabelled=list(self.task.train.texts),
            features=features,
            cache_dir=self.cache_dir,
        )

    def feature_store(self) -> FeatureStore:
        texts = list(self.task.train.texts) + list(self.task.test.texts)
        return FeatureStore(self.model, self.device, self.precision, texts, self.task.fingerprint, self.cache_dir)


def new_record(plan: Plan, cell: Cell) -> dict:
    """A cell's record before it runs: status failed until the cell proves otherwise."""
    task = plan.task
    return {
        "schema_version": SCHEMA_VERSION,
        "cell": cell.key,
        "dataset": task.name,
        "dataset_fingerprint": task.fingerprint,
        "model": plan.model.name,
        "model_fingerprint": plan.model.fingerprint,
        "method": cell.method,
        "revision": plan.specs[cell.method].revision,
        "uses_unlabelled": plan.specs[cell.method].uses_unlabelled,
        "params": dict(cell.params),
        "shots": cell.shots,
        "seed": cell.seed,
        "status": "failed",
        "error": None,
        "metrics": {},
        "n_train": None,
        "n_test": len(task.test),
        "train_seconds": None,
        "predict_seconds": None,
        "shared_seconds": None,
        "one_off_seconds": None,
        "peak_rss_mb": None,
        "trainable_params": None,
        "total_params": None,
        "device": plan.device,
        "precision": plan.precision,
        "threads": plan.threads,
        "predictions": None,
        "finished_at": None,
    }


def _finish(record: dict, error: BaseException | None = None) -> dict:
    if error is not None:
        record["status"] = "failed"
        record["error"] = {"type": type(error).__name__, "message": str(error).strip()[:2000]}
    record["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return record


def run_cell(plan: Plan, cell: Cell, features: FeatureStore | None = None) -> tuple[dict, str | None]:
    """Run one cell; return its record and, if it failed, the traceback text. Never raises for a method error."""
    spec = plan.specs[cell.method]
    task = plan.task
    record = new_record(plan, cell)
    try:
        if spec.unavailable:
            raise ImportError(f"method module {spec.module} could not be imported: {spec.unavailable}")
        missing = spec.missing_requirements()
        if missing:
            raise ImportError(f"method '{cell.method}' needs {', '.join(missing)}: pip install {' '.join(missing)}")
        train = sampling.sample(task, cell.shots, cell.seed)
        record["n_train"] = len(train)
        seed_everything(cell.seed)
        method = spec.cls(**cell.params)
        ctx = plan.context(cell.seed, features)
        shared_before, lookups_before = (features.seconds, features.lookups) if features else (0.0, 0)
        with PeakMemory() as memory:
            started = time.perf_counter()
            info = method.fit(train, ctx) or {}
            fit_seconds = time.perf_counter() - started
            started = time.perf_counter()
            predictions = np.asarray(method.predict(list(task.test.texts)))
            predict_seconds = time.perf_counter() - started
        # one-off work (frozen features of the whole task, an adapted encoder) is reported apart from the
        # cell's own cost: it is paid once per run and reused by every later cell
        shared = (features.seconds - shared_before if features else 0.0) + (info.get("shared_seconds") or 0.0)
        record["train_seconds"] = max(fit_seconds - shared, 0.0)
        record["predict_seconds"] = predict_seconds
        record["shared_seconds"] = shared or None
        # what that one-off work costs, whether this run did it or loaded it from the cache
        used_features = features is not None and features.lookups > lookups_before
        one_off = ((features.compute_seconds or 0.0) if used_features else 0.0) + (info.get("one_off_seconds") or 0.0)
        record["one_off_seconds"] = one_off or None
        record["peak_rss_mb"] = memory.peak_mb
        _check_predictions(predictions, len(task.test), task.num_labels)
        record["params"]["resolved"] = info.get("resolved", {})
        for key in ("trainable_params", "total_params"):
            record[key] = info.get(key)
        record["metrics"] = classification_metrics(task.test.labels, predictions, task.num_labels)
        record["predictions"] = predictions.astype(int).tolist()
        record["status"] = "ok"
        return _finish(record), None
    except Exception as exc:  # a failure inside one cell must never lose the others
        if plan.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()  # an out-of-memory cell must not starve the next one
        return _finish(record, exc), traceback.format_exc()


def _check_predictions(predictions: np.ndarray, n_test: int, num_labels: int) -> None:
    if predictions.shape != (n_test,):
        raise ValueError(f"predict returned shape {predictions.shape}, expected ({n_test},)")
    if not np.issubdtype(predictions.dtype, np.integer) or predictions.min() < 0 or predictions.max() >= num_labels:
        raise ValueError(f"predict must return label ids in 0..{num_labels - 1}")


class PeakMemory:
    """Peak resident memory of this process while the block runs, sampled every 20 ms."""

    def __enter__(self) -> PeakMemory:
        import psutil

        self._process = psutil.Process()
        self.peak_mb = self._process.memory_info().rss / 2**20
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_mb = max(self.peak_mb, self._process.memory_info().rss / 2**20)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = round(max(self.peak_mb, self._process.memory_info().rss / 2**20), 1)


class StopRequest:
    """First Ctrl-C: finish the current cell, then stop. Second: abort at once (KeyboardInterrupt)."""

    def __init__(self, on_first: Callable[[], None]) -> None:
        self.requested = False
        self._on_first = on_first

    def __enter__(self) -> StopRequest:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._on_first()

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)


def run_cells(
    plan: Plan, cells: list[Cell], stop: StopRequest, announce: Callable[[str], None] = print
) -> Iterator[tuple[Cell, dict, str | None]]:
    """Run `cells` until done or a stop is requested, yielding each record as its cell finishes.

    plan.jobs=1 runs them in this process, in order; more runs them in that many worker processes (each with
    `plan.threads` torch threads), this process staying the only writer. The methods' one-off work (their
    optional `precompute`: frozen features, an adapted encoder) then runs as a worker task of its own while the
    other workers run cells that do not need it; the method's cells wait for it. Where every cell needs one-off
    work, there is nothing to overlap it with, and this process does it first with all the threads. Workers
    ignore SIGINT: the first Ctrl-C lets running work finish and starts nothing new, the second terminates
    the workers."""
    if not cells:
        return
    if plan.jobs <= 1:
        yield from _run_in_process(plan, cells, stop)
        return
    one_off = {
        cell.method: cell  # one cell per method: its cells share the method's parameters
        for cell in cells
        if hasattr(plan.specs[cell.method].cls, "precompute") and not plan.specs[cell.method].missing_requirements()
    }
    charged: dict[str, float] = {}
    if all(cell.method in one_off for cell in cells):
        charged, one_off = precompute(plan, list(one_off.values()), stop, announce), {}
    yield from _run_in_workers(plan, cells, stop, one_off, charged, announce)


def precompute(plan: Plan, cells: list[Cell], stop: StopRequest, announce: Callable[[str], None]) -> dict[str, float]:
    """The one-off work of each cell's method, done here with all of the run's threads and left in the cache for
    the workers to load. Returns the seconds by method."""
    import torch

    torch.set_num_threads(plan.jobs * plan.threads)
    features = plan.feature_store()
    seconds = {}
    for cell in cells:
        if stop.requested:
            break
        seconds[cell.method] = _precompute(plan, cell, features)
        _announce_one_off(announce, cell.method, seconds[cell.method])
    return seconds


def _precompute(plan: Plan, cell: Cell, features: FeatureStore) -> float:
    """Run a method's one-off work; return its seconds. A failure is left for the method's cells to meet and
    record, each of them then trying the work itself."""
    started = time.perf_counter()
    with contextlib.suppress(Exception):
        plan.specs[cell.method].cls(**cell.params).precompute(plan.context(0, features))
    return time.perf_counter() - started


def _announce_one_off(announce: Callable[[str], None], method: str, seconds: float) -> None:
    if seconds >= 1:
        announce(f"one-off work for {method}: {seconds:.0f} s (shared by its cells)")


def _run_in_process(plan: Plan, cells: list[Cell], stop: StopRequest) -> Iterator[tuple[Cell, dict, str | None]]:
    import torch

    torch.set_num_threads(plan.threads)
    plan.preload()
    features = plan.feature_store()
    for cell in cells:
        if stop.requested:
            return
        record, trace = run_cell(plan, cell, features)
        yield cell, record, trace


_worker_plan: Plan | None = None
_worker_features: FeatureStore | None = None


def _init_worker(plan: Plan) -> None:
    global _worker_plan, _worker_features
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    torch.set_num_threads(plan.threads)
    plan.preload()
    _worker_plan, _worker_features = plan, plan.feature_store()


def _exit_with_parent(parent: int) -> None:
    """A worker must not outlive its run: if the main process is killed (kill -9, a crashed terminal), the worker
    would otherwise finish its cell, holding cores and memory, and then wait forever."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _run_in_worker(cell: Cell) -> tuple[dict, str | None]:
    return run_cell(_worker_plan, cell, _worker_features)


def _precompute_in_worker(cell: Cell) -> float:
    return _precompute(_worker_plan, cell, _worker_features)


def _run_in_workers(
    plan: Plan,
    cells: list[Cell],
    stop: StopRequest,
    one_off: dict[str, Cell],
    charged: dict[str, float],
    announce: Callable[[str], None],
) -> Iterator[tuple[Cell, dict, str | None]]:
    """Run the cells and the methods' pending one-off work (`one_off`, by method) in `plan.jobs` workers. The
    seconds of one-off work (`charged`: done before, by method; then each task's as it finishes) go on the
    method's first ok record, as when its first cell does the work."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pending, waiting, charged = list(cells), dict(one_off), dict(charged)
    seconds: dict = {}  # (method, shots) -> train + predict seconds of its finished cells
    context = multiprocessing.get_context("spawn")  # fork after torch has started threads can deadlock
    start_pool = lambda: ProcessPoolExecutor(  # noqa: E731
        plan.jobs, mp_context=context, initializer=_init_worker, initargs=(plan,)
    )
    pool = start_pool()
    running: dict = {}  # future -> cell
    working: dict = {}  # future -> method whose one-off work it is doing
    suspects: set[str] = set()  # keys of cells that were running when a worker died: each runs again alone
    try:
        while pending or running or working:
            while len(running) + len(working) < plan.jobs and not stop.requested:
                task = next_task(pending, waiting, set(working.values()), seconds, running.values(), suspects)
                if task is None:
                    break
                kind, cell = task
                try:
                    future = pool.submit(_precompute_in_worker if kind == "one-off" else _run_in_worker, cell)
                except BrokenProcessPool:  # a worker died since the last wait; the task stays where it was
                    if running or working:
                        break  # their futures report the death below
                    pool.shutdown(wait=False, cancel_futures=True)  # an idle worker died: nothing to re-run
                    pool = start_pool()
                    continue
                if kind == "one-off":
                    del waiting[cell.method]
                    working[future] = cell.method
                else:
                    pending.remove(cell)
                    running[future] = cell
            if not running and not working:
                return
            done, _ = wait([*running, *working], timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                if future not in running and future not in working:  # dropped when a worker died
                    continue
                cell, method = running.pop(future, None), working.pop(future, None)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    # a worker died (typically the kernel's out-of-memory killer) and took the pool with it. Which
                    # one is unknown, so every cell that was running goes back to run again alone: a cell whose
                    # worker dies while it runs alone is the cause and is recorded as failed (one that ran out
                    # of memory only beside another may pass). One-off work in progress is left to the
                    # method's cells, which each try it themselves.
                    if cell is not None and cell.key in suspects:
                        result = (_worker_died(plan, cell), None)
                    else:
                        result = None
                        rerun = [*([cell] if cell else []), *running.values()]
                        suspects.update(c.key for c in rerun)
                        pending[:0] = rerun
                    pool.shutdown(wait=False, cancel_futures=True)
                    running, working = {}, {}
                    pool = start_pool()
                if method is not None:
                    if result is not None:
                        charged[method] = charged.get(method, 0.0) + result
                        _announce_one_off(announce, method, result)
                    continue
                if result is None:
                    continue
                suspects.discard(cell.key)
                record, trace = result
                if record["status"] == "ok":
                    seconds.setdefault((cell.method, cell.shots), []).append(
                        record["train_seconds"] + record["predict_seconds"]
                    )
                    if cell.method in charged:
                        record["shared_seconds"] = (record["shared_seconds"] or 0.0) + charged.pop(cell.method)
                yield cell, record, trace
    finally:
        for process in list(getattr(pool, "_processes", {}).values()):
            if running or working:
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def next_task(
    pending: list[Cell],
    waiting: dict[str, Cell],
    working: set[str],
    seconds: dict[tuple[str, int | str], list[float]],
    running: Iterable[Cell] = (),
    suspects: set[str] = frozenset(),
) -> tuple[str, Cell] | None:
    """What a free worker runs next, as ("one-off", the method's cell) or ("cell", cell). A suspect (a cell that
    was `running` when a worker died, by key) runs alone, before anything else. Then one-off work waiting to
    start (`waiting`, by method) goes first, one such task at a time, so that two workers never compute the
    same shared features; else the next cell (`next_cell`) among those whose method has no one-off work waiting
    or in progress (`working`). None: nothing can start now."""
    running = list(running)
    if any(cell.key in suspects for cell in running):
        return None
    suspect = next((cell for cell in pending if cell.key in suspects), None)
    if suspect is not None:
        return ("cell", suspect) if not running and not working else None
    if waiting and not working:
        return "one-off", next(iter(waiting.values()))
    ready = [cell for cell in pending if cell.method not in waiting and cell.method not in working]
    return ("cell", next_cell(ready, seconds)) if ready else None


def next_cell(pending: list[Cell], seconds: dict[tuple[str, int | str], list[float]]) -> Cell:
    """The cell a free worker runs next: one of the earliest budget still pending (an interrupted grid keeps
    comparable rows at the small budgets), of the method whose finished cells took longest (at this budget if
    any finished, else at any), a method not yet timed first. Longest first keeps every worker busy to the end
    instead of one finishing a long cell alone."""

    def expected(cell: Cell) -> float:
        here = seconds.get((cell.method, cell.shots))
        anywhere = [s for (method, _), values in seconds.items() if method == cell.method for s in values]
        return float(np.mean(here or anywhere)) if anywhere else float("inf")

    return max((c for c in pending if c.shots == pending[0].shots), key=expected)  # plan order among equals


def _worker_died(plan: Plan, cell: Cell) -> dict:
    class WorkerDied(RuntimeError):
        pass

    message = "the worker process running this cell died (most often the system's out-of-memory killer)"
    return _finish(new_record(plan, cell), WorkerDied(message))
