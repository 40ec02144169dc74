"""Running one task wherever an executor puts it: a cell end to end (sample, fit, predict, metrics, record) or a
method's one-off work. The task carries its whole configuration; what a process loads for it (the task's data,
the shared features, imports) is kept for the process's next tasks.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark import flops, modeling
from benchmark.context import Context, FeatureStore
from benchmark.data import sampling
from benchmark.data.load import load_source
from benchmark.data.tasks import Task
from benchmark.grid import provenance
from benchmark.grid.cache import OneOffCache, Use
from benchmark.grid.plan import Cell, Settings
from benchmark.metrics import classification_metrics
from benchmark.record import FitResult, Record, sample_hash
from benchmark.version import __version__

CELL, ONE_OFF = "cell", "one-off"


@dataclass(frozen=True, eq=False)
class Job:
    """What an executor runs: a cell, or the one-off work of the cell's method; with the torch threads to use."""

    kind: str  # CELL or ONE_OFF
    cell: Cell
    threads: int

    def run(self):
        """A cell gives (record, traceback text or None); one-off work gives the seconds it took."""
        import torch

        torch.set_num_threads(self.threads)
        return run_cell(self.cell) if self.kind == CELL else run_one_off(self.cell)


def run_cell(cell: Cell) -> tuple[Record, str | None]:
    """Run one cell; return its record and, if it failed, the traceback text. Never raises for a method error."""
    record = new_record(cell)
    try:
        task = _task(cell)
        record.n_test = len(task.test)
        spec = cell.method
        if spec.unavailable:
            raise ImportError(f"method module {spec.module} could not be imported: {spec.unavailable}")
        missing = spec.missing_requirements()
        if missing:
            raise ImportError(f"method '{spec.name}' needs {', '.join(missing)}: pip install {' '.join(missing)}")
        train = sampling.sample(task, cell.budget, cell.seed)
        record.n_train, record.sample = len(train), sample_hash(train.texts, train.labels)
        modeling.seed_everything(cell.seed)
        method = spec.cls(**cell.params)
        ctx = _context(cell, task, cell.seed)
        with PeakMemory() as memory:
            with Meter() as fit:
                result = method.fit(train, ctx)
            fit_uses = len(ctx.uses)
            with Meter() as predict:
                predictions = np.asarray(method.predict(list(task.test.texts)))
        if result is None:
            result = FitResult()
        if not isinstance(result, FitResult):
            raise TypeError(f"fit returned {type(result).__name__}: return a benchmark.record.FitResult or None")
        _account(record, ctx.uses, fit_uses, fit, predict)
        record.peak_rss_mb = memory.peak_mb
        _check_predictions(predictions, len(task.test), task.num_labels)
        record.resolved = dict(result.resolved)
        record.trainable_params, record.total_params = result.trainable_params, result.total_params
        record.metrics = classification_metrics(task.test.labels, predictions, task.num_labels)
        record.predictions = predictions.astype(int).tolist()
        _check_finite(record)
        record.status = "ok"
        return record.finish(), None
    except Exception as exc:  # a failure inside one cell must never lose the others
        if cell.settings.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()  # an out-of-memory cell must not starve the next one
        return record.fail(exc).finish(), traceback.format_exc()


def run_one_off(cell: Cell) -> float:
    """The one-off work of the cell's method (its `precompute`), left in the cache for its cells; the seconds it
    spent building or loading artifacts. A failure is left for the method's cells to meet and record, each of
    them then trying the work."""
    uses: list[Use] = []
    with contextlib.suppress(Exception):
        ctx = _context(cell, _task(cell), seed=0)
        uses = ctx.uses
        cell.method.cls(**cell.params).precompute(ctx)
    return _seconds(uses)


@dataclass
class Meter:
    """Wall seconds and useful FLOPs of a block."""

    seconds: float = 0.0
    flops: float = 0.0

    def __enter__(self) -> Meter:
        self._started, self._counted = time.perf_counter(), flops.total()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._started
        self.flops = flops.total() - self._counted


def _account(record: Record, uses: list[Use], fit_uses: int, fit: Meter, predict: Meter) -> None:
    """One-off work (frozen features of the whole task, an adapted encoder) is not the cell's own cost: what the
    cell spent building or loading it is `shared_seconds`, what building it took is `one_off_*`."""
    in_fit, in_predict = uses[:fit_uses], uses[fit_uses:]
    record.train_seconds = max(fit.seconds - _seconds(in_fit), 0.0)
    record.predict_seconds = max(predict.seconds - _seconds(in_predict), 0.0)
    record.shared_seconds = _seconds(uses) or None
    record.train_flops = max(fit.flops - _built_flops(in_fit), 0.0)
    record.predict_flops = max(predict.flops - _built_flops(in_predict), 0.0)
    artifacts = {(u.kind, u.key): u.cost for u in uses}.values()
    record.one_off_seconds = sum(cost.seconds for cost in artifacts) or None
    record.one_off_flops = sum(cost.flops for cost in artifacts) or None


def _built_flops(uses: list[Use]) -> float:
    return sum(use.cost.flops for use in uses if use.built_here)


def new_record(cell: Cell) -> Record:
    """A cell's record before it runs: failed until the cell proves otherwise; it names what made it (the
    invocation, the harness's version, the project's commit as this process sees it)."""
    return Record(
        cell=cell.key,
        dataset=cell.dataset,
        dataset_fingerprint=cell.dataset_fingerprint,
        model=cell.settings.model.name,
        model_fingerprint=cell.settings.model.fingerprint,
        method=cell.method.name,
        revision=cell.method.revision,
        uses_unlabelled=cell.method.uses_unlabelled,
        params=dict(cell.params),
        shots=cell.budget,
        seed=cell.seed,
        n_test=0,
        device=cell.settings.device,
        precision=cell.settings.precision,
        threads=_threads(),
        invocation_id=cell.settings.invocation_id,
        harness_version=__version__,
        project_commit=provenance.head_commit(),
    )


def has_one_off_work(cell: Cell) -> bool:
    spec = cell.method
    return spec.cls is not None and hasattr(spec.cls, "precompute") and not spec.missing_requirements()


# --- what a process keeps between tasks ------------------------------------------------------------------

_features: dict[tuple, FeatureStore] = {}
_prepared: set[str] = set()


def _task(cell: Cell) -> Task:
    task = load_source(cell.source)
    if task.fingerprint != cell.dataset_fingerprint:
        raise RuntimeError(
            f"the data of {cell.dataset} changed since the run was planned (fingerprint {task.fingerprint}, "
            f"planned {cell.dataset_fingerprint}): every node must see the same files"
        )
    return task


def _context(cell: Cell, task: Task, seed: int) -> Context:
    """What a method sees of the run: model, labels, seed, device, the unlabelled pool and the caches."""
    settings = cell.settings
    _prepare(settings, cell.method.requires)
    return Context(
        settings.model,
        task.num_labels,
        seed,
        settings.device,
        settings.precision,
        unlabelled=list(task.train.texts),
        features=_feature_store(task, settings),
        cache=OneOffCache(settings.cache_dir),
    )


def _feature_store(task: Task, settings: Settings) -> FeatureStore:
    slot = (task.fingerprint, settings.model.fingerprint, settings.device, settings.precision, settings.cache_dir)
    if slot not in _features:
        texts = list(task.train.texts) + list(task.test.texts)
        _features[slot] = FeatureStore(settings.model, settings.device, settings.precision, texts, task.fingerprint)
    return _features[slot]


def _prepare(settings: Settings, packages: tuple[str, ...]) -> None:
    """Imports before the first cell, so its timing is the cell's own. A failure here is left for the cells to
    meet and record."""
    flops.install()
    _check_model(settings.model)
    slot = f"{settings.model.path}|{','.join(packages)}"
    if slot not in _prepared:
        _prepared.add(slot)
        with contextlib.suppress(Exception):
            modeling.preload(settings.model, packages)


def _check_model(model) -> None:
    """The model this process would load is the one the run planned with (another node may hold another)."""
    if model.path in _prepared:
        return
    found = modeling.read_model_folder(model.name, Path(model.path), model.trust_remote_code).fingerprint
    if found != model.fingerprint:
        raise RuntimeError(
            f"the model at {model.path} is not the one the run was planned with (fingerprint {found}, planned "
            f"{model.fingerprint}): every node must hold the same model files"
        )
    _prepared.add(model.path)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _seconds(uses: list[Use]) -> float:
    return sum(use.seconds_here for use in uses)


def _check_finite(record: Record) -> None:
    """A record is JSON without NaN or infinity: a method's non-finite value fails its cell, not the run."""
    try:
        json.dumps(record.to_json(), allow_nan=False)
    except ValueError:
        bad = [name for name, value in record.to_json().items() if _has_non_finite(value)]
        raise ValueError(f"the cell's record holds a number that is not finite (in {', '.join(bad)})") from None


def _has_non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


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


def forget() -> None:
    """Drop what this process keeps between tasks (as a new process would start)."""
    from benchmark.grid import cache

    _features.clear()
    cache.clear_memory()
