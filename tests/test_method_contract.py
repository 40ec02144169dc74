"""Every registered method, presets included, honours the contract on a tiny random BERT: fit, then predict
valid label ids for every test example; the record is complete; the same seed gives the same predictions."""

import pytest
from conftest import plan_of, synthetic_rows, write_csv

from benchmark import execute, registry

METHODS = sorted(registry.available())


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("data") / "d.csv", synthetic_rows(12, seed=2))


def small_overrides(spec) -> dict:
    """Keep every method's loop short on the tiny model; the contract does not depend on training length."""
    fields = spec.defaults()
    return {
        k: v for k, v in {"max_epochs": 2, "min_steps": 2, "num_iterations": 2, "mlm_epochs": 1}.items() if k in fields
    }


@pytest.mark.parametrize("name", METHODS)
def test_method_contract(name, data_file, tiny_spec, tmp_path):
    spec = registry.available()[name]
    plan = plan_of(data_file, tiny_spec, {name: spec}, {name: small_overrides(spec)}, cache_dir=tmp_path / "cache")
    (cell,) = plan.cells
    (task,) = plan.tasks.values()
    first, trace = execute.run_cell(cell)
    assert first.ok, trace
    assert len(first.predictions) == len(task.test) == first.n_test
    assert set(first.predictions) <= set(range(task.num_labels))
    assert 0 < first.trainable_params <= first.total_params
    assert first.n_train == 8 and first.train_seconds >= 0 and first.predict_seconds >= 0
    assert first.peak_rss_mb > 0 and {"accuracy", "macro_f1"} <= set(first.metrics)
    assert isinstance(first.resolved, dict) and first.sample
    # every method runs the encoder somewhere: its work is counted, whoever calls the encoder
    assert first.train_flops + first.predict_flops + (first.one_off_flops or 0) > 0
    second, _ = execute.run_cell(cell)
    assert second.predictions == first.predictions and second.metrics == first.metrics
    assert second.sample == first.sample


@pytest.mark.parametrize("name", METHODS)
def test_every_method_runs_in_the_precision_its_record_states(name, data_file, tiny_spec, tmp_path):
    """Under bf16 every linear layer a method runs computes in bf16 (autocast): the record's precision is true."""
    import dataclasses

    import torch

    spec = registry.available()[name]
    plan = plan_of(data_file, tiny_spec, {name: spec}, {name: small_overrides(spec)}, cache_dir=tmp_path / "cache")
    cell = dataclasses.replace(plan.cells[0], settings=dataclasses.replace(plan.settings, precision="bf16"))
    seen = set()
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, output: seen.add(output.dtype) if isinstance(module, torch.nn.Linear) else None
    )
    try:
        execute.run_one_off(cell)  # one-off work (features, the MLM stage) too
        record, trace = execute.run_cell(cell)
    finally:
        hook.remove()
    assert record.ok and record.precision == "bf16", trace
    assert seen == {torch.bfloat16}
