"""Shared fixtures: a tiny randomly initialised BERT built from a config (no download), in the layout of a
sentence-transformers folder, and small synthetic datasets. Everything here is offline and fast."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from benchmark.testing import build_tiny_model, synthetic_rows, write_csv  # noqa: F401  (tests import them from here)

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Majority:
    """A method that predicts the majority label of its sample (the base of the tests' throwaway methods)."""

    def fit(self, train, ctx):
        from benchmark.record import FitResult

        self.label = int(np.bincount(train.labels).argmax())
        return FitResult(1, 1)

    def predict(self, texts):
        return np.full(len(texts), self.label)


def tiny_classifier(model_type: str):
    """A random 3-block classifier of another architecture, built from a config (no weights needed)."""
    from transformers import AutoConfig, AutoModel

    from benchmark.modeling import build_classifier

    sizes = (
        {"dim": 32, "n_layers": 3, "n_heads": 2, "hidden_dim": 64}
        if model_type == "distilbert"
        else {"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 64}
    )
    special = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "cls_token_id": 1, "sep_token_id": 2}
    config = AutoConfig.for_model(model_type, vocab_size=50, max_position_embeddings=64, **sizes, **special)
    return build_classifier(AutoModel.from_config(config), "mean", 2)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_spec(tiny_model):
    from benchmark.modeling import resolve_model

    return resolve_model(str(tiny_model))


@pytest.fixture()
def tiny_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "train.csv", synthetic_rows(30, seed=1))


@pytest.fixture()
def tiny_task(tiny_csv):
    from benchmark.data.load import load_task

    return load_task(str(tiny_csv))


@pytest.fixture()
def throwaway():
    """Registers methods for one test (name, class) and removes them afterwards."""
    from benchmark import registry

    names = []

    def add(name, cls):
        names.append(name)
        registry.register(name)(cls)

    yield add
    for name in names:
        registry.unregister(name)


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """Tests never reach the Hub, and never touch the user's cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("FEWSHOT_BENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def one_job_unless_asked(monkeypatch):
    """In-process runs use one job unless a test passes --jobs: on a multi-core machine the default would start
    worker processes (seconds of start-up each) for a tiny grid. Tests of the default itself import
    `default_jobs` at module level, before this patch."""
    import benchmark.grid.runtime

    monkeypatch.setattr(benchmark.grid.runtime, "default_jobs", lambda requested, *rest: requested or 1)


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Each test starts as a new process would: no features or one-off artifacts kept in memory."""
    from benchmark.grid import execute

    execute.forget()
    yield
    execute.forget()


def plan_of(data_file, spec, methods, overrides=None, budgets=(4,), seeds=(0,), cache_dir=None):
    """A plan on a local data file: `methods` are names or {name: MethodSpec}."""
    from benchmark import registry
    from benchmark.budget import Budget
    from benchmark.data.load import load_source
    from benchmark.data.tasks import DatasetSource
    from benchmark.grid.plan import Plan, Settings

    source = DatasetSource.of(str(data_file))
    specs = methods if isinstance(methods, dict) else {n: registry.resolve([n])[0] for n in methods}
    params = {name: spec_.defaults() | (overrides or {}).get(name, {}) for name, spec_ in specs.items()}
    budgets = [Budget.of(b) for b in budgets]
    settings = Settings(spec, threads=1, cache_dir=cache_dir)
    return Plan({source: load_source(source)}, specs, params, budgets, list(seeds), settings)


class Gate:
    """The gate of the `gated` plugin method (tests/plugins/fewshot_gated.py) and the environment of a
    `python -m benchmark` subprocess that finds it through its entry point."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "gate"
        self.folder.mkdir()
        site = root / "site"
        info = site / "fewshot_gated-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fewshot-gated\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text("[fewshot_bench.methods]\ngated = fewshot_gated\n")
        import os

        path = os.pathsep.join([str(site), str(ROOT / "tests" / "plugins"), os.environ.get("PYTHONPATH", "")])
        self._env = dict(os.environ, PYTHONPATH=path.rstrip(os.pathsep), PYTHONUNBUFFERED="1")

    def env(self, passes: int) -> dict[str, str]:
        """Closed, letting `passes` cells through; cells after those wait until `open()`."""
        for stale in self.folder.iterdir():
            stale.unlink()
        return self._env | {"FEWSHOT_GATE": str(self.folder), "FEWSHOT_GATE_PASSES": str(passes)}

    def open(self) -> None:
        (self.folder / "open").touch()

    def wait_until_held(self, process, cells: int = 1, timeout: float = 600) -> None:
        """Until `cells` cells wait at the gate (in the middle of their fit), or fail if `process` ends first."""
        import time

        deadline = time.monotonic() + timeout
        while len(list(self.folder.glob("waiting-*"))) < cells:
            if process.poll() is not None:
                raise AssertionError(f"the run ended before {cells} cell(s) reached the gate: {process.communicate()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {cells} cell(s) reached the gate in {timeout} s")
            time.sleep(0.02)


@pytest.fixture()
def gate(tmp_path) -> Gate:
    return Gate(tmp_path)
