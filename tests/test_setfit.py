"""SetFit on the tiny random BERT: the step cap bounds the optimizer steps actually run (and never lengthens a
small budget), the paper protocol's pair count, determinism, silence, and nothing written to the working
directory."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("setfit")

from conftest import ROOT  # noqa: E402

from benchmark import sampling  # noqa: E402
from benchmark.context import Context  # noqa: E402
from benchmark.registry import available  # noqa: E402
from methods.setfit import pair_count  # noqa: E402


@pytest.fixture()
def optimizer_steps():
    """Counts optimizer steps of every torch optimizer while the test runs."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    calls = []
    handle = register_optimizer_step_post_hook(lambda optimizer, args, kwargs: calls.append(1))
    yield calls
    handle.remove()


def fit(tiny_task, tiny_spec, seed=0, **overrides):
    method = available()["setfit"].build(overrides)
    info = method.fit(sampling.sample(tiny_task, 4, seed), Context(tiny_spec, tiny_task.num_labels, seed))
    return method, info


def test_step_cap_stops_training_at_the_cap(tiny_task, tiny_spec, optimizer_steps):
    _, info = fit(tiny_task, tiny_spec, max_steps=3)
    assert len(optimizer_steps) == 3
    resolved = info["resolved"]
    assert resolved["steps"] == 3 and resolved["step_cap_applied"]
    assert resolved["steps_uncapped"] == 20  # 2 x 20 iterations x 8 examples = 320 pairs, batch 16


def test_paper_protocol_at_a_small_budget_runs_uncapped_for_one_epoch(tiny_task, tiny_spec, optimizer_steps):
    # the default cap (500) is above the 20 steps this budget needs; it must not stretch training to the cap
    _, info = fit(tiny_task, tiny_spec)
    assert info["resolved"]["pairs"] == 2 * 20 * 8
    assert len(optimizer_steps) == info["resolved"]["steps"] == 20
    assert not info["resolved"]["step_cap_applied"] and info["resolved"]["epochs"] == 1


def test_under_device_cpu_the_trainer_is_built_and_trained_with_accelerates_cpu_switch(
    tiny_task, tiny_spec, monkeypatch
):
    """setfit's Trainer takes any visible GPU unless that switch is on while it is built and while it trains."""
    import setfit

    seen = []

    def spy(real):
        def wrapper(self, *args, **kwargs):
            seen.append(os.environ.get("ACCELERATE_USE_CPU"))
            return real(self, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(setfit.Trainer, "__init__", spy(setfit.Trainer.__init__))
    monkeypatch.setattr(setfit.Trainer, "train", spy(setfit.Trainer.train))
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    fit(tiny_task, tiny_spec, max_steps=1)
    assert seen == ["true", "true"] and "ACCELERATE_USE_CPU" not in os.environ


def test_on_an_accelerator_the_cpu_switch_stays_off(monkeypatch):
    from methods.setfit import _trainer_device

    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    with _trainer_device("cuda:0"):
        assert "ACCELERATE_USE_CPU" not in os.environ


@pytest.mark.parametrize("labels", [[0] * 8 + [1] * 8, [0] * 5 + [1] * 3 + [2] * 9, [0, 1, 2, 3] * 6])
@pytest.mark.parametrize("num_iterations", [None, 2])
def test_pair_count_matches_the_library(labels, num_iterations):
    from setfit.sampler import ContrastiveDataset

    texts = [f"text {i}" for i in range(len(labels))]
    dataset = ContrastiveDataset(texts, labels, multilabel=False, num_iterations=num_iterations)
    assert pair_count(labels, num_iterations) == len(list(dataset))


def test_same_seed_same_predictions_silently_and_nothing_written_to_cwd(
    tiny_task, tiny_spec, tmp_path, monkeypatch, capfd
):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    runs = []
    for _ in range(2):
        method, info = fit(tiny_task, tiny_spec, seed=3, num_iterations=2)
        predictions = method.predict(tiny_task.test.texts)
        assert predictions.dtype.kind == "i" and set(predictions) <= set(range(tiny_task.num_labels))
        runs.append(predictions.tolist())
    assert runs[0] == runs[1]
    assert list(cwd.iterdir()) == []  # no checkpoints/, runs/ or model card
    err = capfd.readouterr().err
    assert "%|" not in err and "Running training" not in err and "loss" not in err


def test_module_import_is_cheap_and_leaves_the_setfit_library_importable():
    code = (
        "import sys, methods.setfit; "
        "heavy = {'torch', 'setfit', 'sentence_transformers'} & set(sys.modules); "
        "import setfit; print(sorted(heavy), setfit.__name__, hasattr(setfit, 'SetFitModel'))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    out = run.stdout
    assert out.split() == ["[]", "setfit", "True"]
