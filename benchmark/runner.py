"""Running the grid: cells, their keys, one cell end to end, and the loop that resumes, isolates failures and
stops cleanly on Ctrl-C.

A cell is (method with its full hyperparameters, budget, seed) on one dataset and model. Its key hashes the
dataset fingerprint, model fingerprint, method, hyperparameters, budget, seed and precision: a finished key is
skipped on re-run, and any change to those makes a new cell.
"""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmark import SCHEMA_VERSION, sampling
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
    threads: int = 1
    cache_dir: Path | None = None
    cells: list[Cell] = field(init=False)

    def __post_init__(self) -> None:
        self.cells = []
        for name, spec in self.specs.items():
            params = spec.defaults() | self.overrides.get(name, {})
            for shots in self.budgets:
                for seed in self.seeds:
                    self.cells.append(Cell(name, params, shots, seed, self.cell_key(name, params, shots, seed)))

    def cell_key(self, method: str, params: dict, shots, seed: int) -> str:
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
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def feature_store(self) -> FeatureStore:
        texts = list(self.task.train.texts) + list(self.task.test.texts)
        return FeatureStore(self.model, self.device, self.precision, texts, self.task.fingerprint, self.cache_dir)


def run_cell(plan: Plan, cell: Cell, features: FeatureStore | None = None) -> tuple[dict, str | None]:
    """Run one cell; return its record and, if it failed, the traceback text. Never raises for a method error."""
    spec = plan.specs[cell.method]
    task = plan.task
    record = {
        "schema_version": SCHEMA_VERSION,
        "cell": cell.key,
        "dataset": task.name,
        "dataset_fingerprint": task.fingerprint,
        "model": plan.model.name,
        "model_fingerprint": plan.model.fingerprint,
        "method": cell.method,
        "uses_unlabelled": spec.uses_unlabelled,
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
        "peak_rss_mb": None,
        "trainable_params": None,
        "total_params": None,
        "device": plan.device,
        "precision": plan.precision,
        "threads": plan.threads,
        "predictions": None,
    }
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
        ctx = Context(
            plan.model,
            task.num_labels,
            cell.seed,
            plan.device,
            plan.precision,
            unlabelled=list(task.train.texts),
            features=features,
            cache_dir=plan.cache_dir,
        )
        shared_before = features.seconds if features else 0.0
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
        record["peak_rss_mb"] = memory.peak_mb
        _check_predictions(predictions, len(task.test), task.num_labels)
        record["params"]["resolved"] = info.get("resolved", {})
        for key in ("trainable_params", "total_params"):
            record[key] = info.get(key)
        record["metrics"] = classification_metrics(task.test.labels, predictions, task.num_labels)
        record["predictions"] = predictions.astype(int).tolist()
        record["status"] = "ok"
        trace = None
    except Exception as exc:  # a failure inside one cell must never lose the others
        record["error"] = {"type": type(exc).__name__, "message": str(exc).strip()[:2000]}
        trace = traceback.format_exc()
    record["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return record, trace


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


def run_cells(plan: Plan, cells: list[Cell], stop: StopRequest) -> Iterator[tuple[Cell, dict, str | None]]:
    """Run `cells` in this process, in order, until done or a stop is requested."""
    import torch

    torch.set_num_threads(plan.threads)
    features = plan.feature_store()
    for cell in cells:
        if stop.requested:
            return
        record, trace = run_cell(plan, cell, features)
        yield cell, record, trace
