"""The grid: every cell a run asks for, each a self-contained, picklable description that any executor (this
process, a worker process, a node of a cluster) can run without live objects from the caller.

A cell is (dataset, method with its full hyperparameters, budget, seed) on one model. Its key hashes the
dataset fingerprint, model fingerprint and max length, method and its code revision, hyperparameters, budget,
seed and precision: a finished key is skipped on re-run, and any change to those makes a new cell.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.budget import Budget
from benchmark.data.tasks import DatasetSource, Task
from benchmark.modeling import ModelSpec
from benchmark.registry import MethodSpec

if TYPE_CHECKING:
    from benchmark.grid.config import RunConfig


@dataclass(frozen=True)
class Settings:
    """How every cell of a run executes, and which invocation runs it."""

    model: ModelSpec
    device: str = "cpu"
    precision: str = "fp32"
    threads: int = 1  # torch threads of the process running a cell (a lone cell may be given more)
    cache_dir: Path | None = None  # one-off work shared across cells and runs; None: in memory only
    invocation_id: str | None = None  # of the `run` command, for its records (never part of a cell's key)


@dataclass(frozen=True, eq=False)
class Cell:
    source: DatasetSource
    dataset: str  # the task's name
    dataset_fingerprint: str
    method: MethodSpec
    params: dict[str, Any]
    budget: Budget
    seed: int
    settings: Settings
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self._key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cell) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Cell({self.label}, key={self.key})"

    @property
    def label(self) -> str:
        return f"{self.dataset} · {self.method.name} · {self.budget.label} · seed {self.seed}"

    def _key(self) -> str:
        identity = {
            "dataset": self.dataset_fingerprint,
            "model": self.settings.model.fingerprint,
            "max_length": self.settings.model.max_length,
            "method": self.method.name,
            "params": self.params,
            "shots": self.budget.to_json(),
            "seed": self.seed,
            "precision": self.settings.precision,
        }
        if self.method.revision != 1:  # revision 1 is the code from before revisions were counted: keys stay
            identity["revision"] = self.method.revision
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Plan:
    """Everything a run does, validated before anything is written."""

    tasks: dict[DatasetSource, Task]
    specs: dict[str, MethodSpec]
    params: dict[str, dict[str, Any]]  # every hyperparameter of each method: defaults, presets, overrides
    budgets: list[Budget]
    seeds: list[int]
    settings: Settings
    jobs: int = 1  # tasks at once
    unsupplied: dict[str, list[Budget]] = field(default_factory=dict)  # dataset -> budgets it cannot supply
    precisions: dict[str, str] = field(default_factory=dict)  # method -> its precision where not the run's
    cells: list[Cell] = field(init=False)

    def __post_init__(self) -> None:
        # budget-major, then seed, then dataset, then method: an interrupted grid has comparable rows for every
        # method and dataset at the small budgets and first seeds
        settings = {name: self.settings_of(name) for name in self.specs}
        self.cells = [
            Cell(source, task.name, task.fingerprint, spec, self.params[name], budget, seed, settings[name])
            for budget in self.budgets
            for seed in self.seeds
            for source, task in self.tasks.items()
            if budget not in self.unsupplied.get(task.name, [])
            for name, spec in self.specs.items()
        ]

    def settings_of(self, method: str) -> Settings:
        """The settings a method's cells run with: the run's, in the method's own precision under `auto`."""
        precision = self.precisions.get(method, self.settings.precision)
        return self.settings if precision == self.settings.precision else replace(self.settings, precision=precision)

    def sized_for(self, pending: int) -> Plan:
        """This plan with no more jobs than `pending` cells can keep busy, and the threads of the idle ones given
        to those that run: a lone cell gets every thread (one-off work never runs beside its own method's cells,
        so `pending` cells never need more jobs than that)."""
        jobs = max(1, min(self.jobs, pending))
        if jobs == self.jobs:
            return self
        threads = self.settings.threads * self.jobs // jobs
        sized = replace(self, settings=replace(self.settings, threads=threads), jobs=jobs)
        sized.cells = [cell for cell in sized.cells if cell.key in {c.key for c in self.cells}]
        return sized


def build_plan(config: RunConfig) -> tuple[Plan, Path]:
    """Validate everything the configuration asks for and return (plan, run folder). Writes nothing."""
    from benchmark import registry
    from benchmark.data import sampling
    from benchmark.data.load import load_source
    from benchmark.data.tasks import check_overlap
    from benchmark.errors import UsageError
    from benchmark.grid import runtime
    from benchmark.grid.store import RunFolder
    from benchmark.modeling import resolve_model

    specs = registry.resolve(config.methods)
    settings_from_file = registry.typed_overrides(config.settings, specs)
    overrides = registry.parse_overrides(config.overrides, specs)
    model = resolve_model(config.model, config.trust_remote_code)
    params = {
        spec.name: spec.defaults() | settings_from_file.get(spec.name, {}) | overrides.get(spec.name, {})
        for spec in specs
    }
    for spec in specs:
        registry.check_params(spec, params[spec.name], model, overrides.get(spec.name, {}))
    sources = [DatasetSource.of(name, config.test, config.text_col, config.label_col) for name in config.datasets]
    for i, source in enumerate(sources):  # 'data.csv,./data.csv': one file under two spellings
        if source in sources[:i]:
            raise UsageError(f"--dataset: {config.datasets[i]} names the same dataset as an earlier entry")
    tasks = {source: load_source(source) for source in sources}
    for source, task in tasks.items():
        note = check_overlap(task, config.allow_overlap)
        if note:
            tasks[source] = dataclasses.replace(task, notes=(*task.notes, note))
    unsupplied = {}
    for task in tasks.values():
        if config.metric == "f1_positive" and task.num_labels != 2:
            raise UsageError(
                f"--metric f1_positive needs a binary task; '{task.name}' has {task.num_labels} labels "
                "(use accuracy or macro_f1)"
            )
        if len(tasks) == 1:
            sampling.check_budgets(task, config.budgets)
        unsupplied[task.name] = sampling.unsuppliable(task, config.budgets)
    out = config.out or Path("results") / f"{'+'.join(_slug(t.name) for t in tasks.values())}-{_slug(model.name)}"
    RunFolder.check_writable(out)
    if config.cache_dir is not None:
        check_cache_dir(config.cache_dir)
    if config.executor == "ray":
        resources = ray_resources(config)
    else:
        _check_no_cluster_options(config)
        resources = runtime.resolve(config.device, config.precision, config.threads, config.jobs, config.cache_dir)
    cache_dir = config.cache_dir.absolute() if config.cache_dir else None  # every worker reads the same folder
    run_settings = Settings(
        model, resources.device, resources.precision, resources.threads, cache_dir, invocation_id=config.invocation_id
    )
    precisions = {}
    if config.precision == "auto" and config.executor != "ray" and resources.device == "cpu":
        precisions = runtime.cpu_auto_precisions(specs, params)
    plan = Plan(
        tasks,
        {spec.name: spec for spec in specs},
        params,
        config.budgets,
        list(range(config.seeds)),
        run_settings,
        resources.jobs,
        {name: budgets for name, budgets in unsupplied.items() if budgets},
        precisions,
    )
    return plan, out


def ray_resources(config: RunConfig):
    """Device, precision and threads of cells that run as Ray tasks: chosen from what a cell declares, not from
    the driver's machine (a cell that declares no GPU must not take one; its threads are the CPUs it declares)."""
    import importlib.util

    from benchmark.errors import UsageError
    from benchmark.grid import runtime

    if importlib.util.find_spec("ray") is None:
        raise UsageError("--executor ray needs Ray: pip install 'fewshot-bench[ray]'")
    if config.cache_dir is None:
        raise UsageError("--executor ray needs a cache folder every node sees (--cache-dir), not --no-cache")
    if config.device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device {config.device} with --executor ray: use auto, cpu or cuda (Ray picks the GPU)")
    gpus = config.gpus_per_cell > 0
    if config.device == "cuda" and not gpus:
        raise UsageError("--device cuda with --executor ray needs --gpus-per-cell (a share of a GPU per cell)")
    if config.device == "cpu" and gpus:
        raise UsageError("--gpus-per-cell with --device cpu: the cells would hold GPUs they do not use")
    device = "cuda" if gpus else "cpu"
    precision = config.precision
    if precision == "auto":  # the driver may have no GPU to ask: bf16 where it can tell, fp32 otherwise
        precision = runtime.resolve_precision("auto", device) if device == "cpu" or _driver_sees_cuda() else "fp32"
    return runtime.Resources(device, precision, 1, config.cpus_per_cell)


def _check_no_cluster_options(config: RunConfig) -> None:
    """Options that only a Ray run reads would be dropped without a word on this machine."""
    from benchmark.errors import UsageError

    given = [
        flag
        for flag, value in (("--cpus-per-cell", config.cpus_per_cell != 1), ("--gpus-per-cell", config.gpus_per_cell),
                            ("--ray-address", config.ray_address))
        if value
    ]  # fmt: skip
    if given:
        raise UsageError(
            f"{given[0]} goes with --executor ray; on this machine cells take --jobs and --threads instead"
        )


def _driver_sees_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def check_cache_dir(path: Path) -> None:
    from benchmark.errors import UsageError

    probe = Path(path)
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"--cache-dir {path}: {probe} is not a writable folder (pass another one, or --no-cache)")


def _slug(name: str) -> str:
    """A folder-name part: a path's last component, a Hub name with '_' for '/'."""
    name = Path(name).name if os.sep in name and Path(name).expanduser().exists() else name.replace("/", "_")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "run"
