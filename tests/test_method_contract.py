"""Every registered method, presets included, passes `benchmark.check_method` on a tiny random BERT, in fp32 and
in bf16; so does README's example method; a bundled method whose module stops importing fails here instead of
dropping out; and the check itself catches each broken rule."""

import re
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import ROOT, Majority

from benchmark import check_method, registry
from benchmark.checks import MethodContractError
from benchmark.record import FitResult

registry.discover()
METHODS = sorted(registry.available())


def short(name: str) -> dict:
    """Keep every method's loop short on the tiny model; the contract does not depend on training length."""
    fields = registry.available()[name].defaults()
    return {
        k: v
        for k, v in {"max_epochs": 2, "min_epochs": 1, "min_steps": 2, "num_iterations": 2, "mlm_epochs": 1}.items()
        if k in fields
    }


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_every_registered_method_passes_the_check(name, precision, tiny_model):
    record = check_method(name, tiny_model, short(name), precision=precision)
    assert record.precision == precision and record.n_train == 8
    # every method runs the encoder somewhere: its work is counted, whoever calls the encoder
    assert record.train_flops + record.predict_flops + (record.one_off_flops or 0) > 0


def test_every_bundled_module_imports():
    """A bundled method whose import breaks (a dependency upgrade) is a failure, not a method gone quiet."""
    assert not {module for module in registry.unavailable_modules() if module.startswith("methods.")}
    registering = {p.stem for p in (ROOT / "methods").glob("*.py") if "@register(" in p.read_text()}
    assert {spec.module.removeprefix("methods.") for spec in registry.available().values()} >= registering


def test_readme_example_method_passes_the_check(tmp_path, monkeypatch):
    (block,) = re.findall(r"```python\n(\"\"\"Nearest centroid.*?)```", (ROOT / "README.md").read_text(), re.S)
    (tmp_path / "readme_centroid.py").write_text(block)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        __import__("readme_centroid")
        record = check_method("centroid")
    finally:
        registry.unregister("centroid")
    assert record.ok and record.trainable_params > 0


@dataclass
class OutOfRange(Majority):
    def predict(self, texts):
        return np.full(len(texts), 7)


@dataclass
class TooFew(Majority):
    def predict(self, texts):
        return np.zeros(len(texts) - 1, dtype=int)


@dataclass
class Unseeded(Majority):
    def predict(self, texts):
        return np.random.default_rng().integers(0, 2, len(texts))  # no seed: another answer every run


@dataclass
class Overcounted(Majority):
    def fit(self, train, ctx):
        super().fit(train, ctx)
        return FitResult(trainable_params=5, total_params=2)


@dataclass
class Raises(Majority):
    def fit(self, train, ctx):
        raise RuntimeError("broken on purpose")


@pytest.mark.parametrize(
    ("cls", "broken"),
    [
        (OutOfRange, "predict must return label ids in 0..1"),
        (TooFew, r"predict returned shape \(23,\), expected \(24,\)"),
        (Unseeded, "the same seed gave other predictions"),
        (Overcounted, "trainable_params 5 is not within"),
        (Raises, "RuntimeError: broken on purpose"),
    ],
)
def test_the_check_names_the_rule_a_method_breaks(cls, broken, throwaway, tiny_model):
    throwaway("broken", cls)
    with pytest.raises(MethodContractError, match=broken):
        check_method("broken", tiny_model)
    throwaway("fine", Majority)
    assert check_method("fine", tiny_model).ok
