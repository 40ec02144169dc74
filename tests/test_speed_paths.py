"""The fast paths give the same answers as the slow ones: bucketed batches, the feature cache, the speed report."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from benchmark import modeling
from benchmark.cli import main
from benchmark.context import Context, FeatureStore
from benchmark.grid import cache
from benchmark.grid.cache import OneOffCache
from benchmark.record import Record


def test_bucketed_inference_is_in_input_order_and_equals_one_text_at_a_time(tiny_spec, tiny_task):
    tokenizer = modeling.load_tokenizer(tiny_spec)
    torch.manual_seed(0)
    model = modeling.build_classifier(modeling.load_body(tiny_spec), tiny_spec.pooling, 2)
    texts = list(tiny_task.train.texts[:40])
    tokens = modeling.Tokens.of(tokenizer, texts, tiny_spec.max_length)
    placement = modeling.Placement()
    bucketed = modeling.predict_logits(model, tokens, placement, batch_size=8)
    one_by_one = np.concatenate(
        [modeling.predict_logits(model, modeling.Tokens([ids], tokens.pad_id), placement) for ids in tokens.ids]
    )
    assert np.allclose(bucketed, one_by_one, atol=1e-5)


def test_train_batches_cover_every_example_once_with_little_padding():
    lengths = np.random.default_rng(0).integers(3, 60, size=1000)
    rng = np.random.default_rng(1)
    first, second = modeling.train_batches(lengths, 16, rng), modeling.train_batches(lengths, 16, rng)
    for epoch in (first, second):
        assert sorted(np.concatenate(epoch).tolist()) == list(range(1000))
    assert [b.tolist() for b in first] != [b.tolist() for b in second]  # reshuffled every epoch
    padded = sum(len(b) * lengths[b].max() for b in first)
    random_padded = sum(len(b) * lengths[b].max() for b in np.array_split(np.random.permutation(1000), 63))
    assert padded / lengths.sum() < 1.1 < random_padded / lengths.sum()


def lookup(spec, texts, key, cache_dir, wanted, encode=None):
    """A fresh process's feature store (nothing in memory) looking `wanted` up; (vectors, the cell's context)."""
    cache.clear_memory()
    store = FeatureStore(spec, "cpu", "fp32", texts, key)
    if encode is not None:
        store._encode = encode
    ctx = Context(spec, 2, 0, features=store, cache=OneOffCache(cache_dir))
    return ctx.frozen_features(wanted, normalize=False), ctx


def never(_):
    raise AssertionError("a cache hit must not encode")


def test_feature_cache_hit_equals_recomputation_and_changed_keys_miss(tiny_spec, tiny_task, tmp_path):
    texts = list(tiny_task.train.texts)
    computed, ctx = lookup(tiny_spec, texts, "dataset-a", tmp_path, texts[:5])
    assert (tmp_path / "features" / ctx.features.key / "features.npy").is_file()
    assert np.array_equal(lookup(tiny_spec, texts, "dataset-a", tmp_path, texts[:5], never)[0], computed)
    assert np.allclose(lookup(tiny_spec, texts, "dataset-a", None, texts[:5])[0], computed, atol=1e-6)
    other_length = dataclasses.replace(tiny_spec, max_length=8)
    other_model = dataclasses.replace(tiny_spec, fingerprint="another-model")
    keys = {
        FeatureStore(tiny_spec, "cpu", "fp32", texts, "dataset-a").key,
        FeatureStore(tiny_spec, "cpu", "fp32", texts, "dataset-b").key,
        FeatureStore(other_length, "cpu", "fp32", texts, "dataset-a").key,
        FeatureStore(other_model, "cpu", "fp32", texts, "dataset-a").key,
        FeatureStore(tiny_spec, "cpu", "bf16", texts, "dataset-a").key,
    }
    assert len(keys) == 5


def test_a_feature_cache_hit_reports_what_computing_them_took_and_an_entry_without_it_is_computed_again(
    tiny_spec, tiny_task, tmp_path
):
    texts = list(tiny_task.train.texts)
    _, cold = lookup(tiny_spec, texts, "dataset-a", tmp_path, texts[:5])
    _, warm = lookup(tiny_spec, texts, "dataset-a", tmp_path, texts[:5], never)
    assert cold.uses[0].cost.seconds > 0 and warm.uses[0].cost.seconds == cold.uses[0].cost.seconds
    (tmp_path / "features" / cold.features.key / "cost.json").unlink()  # as a run killed mid-write left it
    zeros = lambda batch: np.zeros((len(batch), 32), dtype=np.float32)  # noqa: E731
    again, _ = lookup(tiny_spec, texts, "dataset-a", tmp_path, texts[:5], zeros)
    assert not again.any() and (tmp_path / "features" / cold.features.key / "cost.json").is_file()


def test_frozen_features_follow_the_bodys_normalisation(tiny_spec, tiny_task):
    ctx = Context(dataclasses.replace(tiny_spec, normalize=True), 2, 0)
    texts = list(tiny_task.train.texts[:4])
    assert np.allclose(np.linalg.norm(ctx.frozen_features(texts), axis=1), 1.0)
    assert not np.allclose(np.linalg.norm(ctx.frozen_features(texts, normalize=False), axis=1), 1.0)


def test_speed_report_runs_and_counts_the_right_matmul_parameters(tiny_csv, tiny_model, tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert (
        main(
            [
                "speed",
                "--dataset",
                str(tiny_csv),
                "--model",
                str(tiny_model),
                "--precisions",
                "fp32",
                "--threads",
                "2",
                "--jobs",
                "2",
                "--methods",
                "full,setfit",
                "--method-shots",
                "4",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["peak_gflops"]["fp32"] > 0
    phases = {row["phase"]: row for row in report["throughput"]}
    parallel = "train (full, batch 16, 2 processes x 1 thread)"
    assert set(phases) == {"train (full, batch 16)", "train (full, batch 32)", parallel, "inference"}
    for row in phases.values():
        assert row["efficiency"] > 0 and row["padding overhead"] >= 1.0
    # each worker trains the same sample in the same batches as the one-process row
    assert phases[parallel]["padding overhead"] == phases["train (full, batch 16)"]["padding overhead"]
    steps = {(row["method"], row["phase"]) for row in report["methods"]}
    assert steps == {("full", "train"), ("full", "predict"), ("setfit", "train"), ("setfit", "predict")}
    assert all(row["useful GFLOP/s"] > 0 and row["precision"] == "fp32" for row in report["methods"])
    from benchmark.speed import matmul_params

    model = modeling.build_classifier(modeling.load_body(modeling.resolve_model(str(tiny_model))), "mean", 2)
    hidden, layers, inner = 32, 4, 64
    assert matmul_params(model) == layers * (4 * hidden * hidden + 2 * hidden * inner) + hidden * 2


def test_preload_imports_the_architecture_so_the_first_cell_does_not_time_it(tiny_model):
    """Run in a fresh interpreter: in this one the test session has imported everything already."""
    code = (
        "import sys\n"
        "from benchmark import modeling\n"
        f"modeling.preload(modeling.resolve_model({str(tiny_model)!r}), ['peft'])\n"
        "assert 'transformers.models.bert.modeling_bert' in sys.modules and 'peft' in sys.modules\n"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0


def test_useful_flops_follow_the_model_whoever_calls_the_encoder(tiny_spec):
    """3F per text to train every block, 2F with the lower half frozen, F to infer; padding never counts."""
    from benchmark import flops

    flops.install()
    body = modeling.load_body(tiny_spec)
    layers, d, inner = 4, 32, 64
    weights = layers * (4 * d * d + 2 * d * inner)
    ids = torch.tensor([[2, 7, 8, 3, 0, 0], [2, 9, 3, 0, 0, 0]])
    mask = (ids != 0).long()
    forward = sum(2 * weights * n + 4 * layers * d * n * n for n in (4, 3))

    def counted(train: bool, grad: bool) -> float:
        before = flops.total()
        body.train(train)
        with torch.set_grad_enabled(grad):
            body(input_ids=ids, attention_mask=mask)
        return flops.total() - before

    assert counted(train=False, grad=False) == forward
    assert counted(train=True, grad=True) == 3 * forward
    for block in modeling.encoder_blocks(body)[:2]:
        block.requires_grad_(False)
    # inputs' and weights' gradients of the upper half's linear layers, both operands of its attention
    upper_half_backward = 2 * (2 * weights / 2 * 7) + 2 * 4 * (layers // 2) * d * (4 * 4 + 3 * 3)
    assert counted(train=True, grad=True) == forward + upper_half_backward
    assert counted(train=False, grad=True) == forward  # eval mode: inference, even with gradients on


def test_floor_counts_machine_time_and_one_off_work_once_and_the_time_outside_the_cells(tmp_path, capsys):
    from test_store_and_leaderboard import record_json

    from benchmark.grid.store import RECORDS, RUN_INFO
    from benchmark.speed import floor_of

    one_off = {"one_off_flops": 6e12, "one_off_seconds": 90.0, "shared_seconds": 90.0}
    rows = [  # two cores: a 1-thread cell took half the machine, a 2-thread cell all of it
        record_json("full", 0, 0.8, train_flops=3e12, train_seconds=100.0, predict_flops=0.0, predict_seconds=0.0),
        record_json(
            "full", 1, 0.8, threads=2, train_flops=3e12, train_seconds=50.0, predict_flops=0.0, predict_seconds=0.0
        ),  # fmt: skip
        record_json(
            "logreg", 0, 0.7, train_flops=0.0, train_seconds=6.0, predict_flops=0.0, predict_seconds=0.0, **one_off
        ),  # fmt: skip
        record_json(
            "logreg", 1, 0.7, train_flops=0.0, train_seconds=6.0, predict_flops=0.0, predict_seconds=0.0, **one_off
        ),  # the same features: built once  # fmt: skip
    ]
    (tmp_path / RECORDS).write_text("".join(json.dumps(row) + "\n" for row in rows))
    floor = floor_of([Record.from_json(row) for row in rows], cores=2)
    assert floor.cells == 4 and floor.tflop == pytest.approx(12.0)
    assert floor.parts["full"]["train"].seconds == pytest.approx(100.0)  # 100 s × 1/2 + 50 s × 2/2
    assert floor.parts["logreg"]["train"].seconds == pytest.approx(6.0)
    assert floor.parts["logreg"]["one-off"].tflop == pytest.approx(6.0)
    assert floor.parts["logreg"]["one-off"].seconds == pytest.approx(90.0)
    assert floor.seconds == pytest.approx(196.0)

    one_off = [{"method": "logreg", "dataset": "d", "seconds": 90.0, "threads": 1}]  # beside a cell: half the machine
    run = {"cpu_count": 2, "cells_run": 4, "wall_seconds": 240.0, "interrupted": False, "one_off": one_off}
    (tmp_path / RUN_INFO).write_text(json.dumps(run | {"invocations": [run]}))
    assert main(["speed", "--floor", str(tmp_path), "--peak", "100"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    # 12 TFLOP at 100 GFLOP/s: 2 min; of 4 min, the cells took 106 s, the one-off work 45 s: 1.48 min left
    assert "wall time 4.0 min: 2.00x the floor" in printed
    assert "cells 1.8, one-off work 0.8, no job's measured work 1.5 (37%" in printed

    (tmp_path / RUN_INFO).write_text(json.dumps(run | {"invocations": [run, run]}))  # resumed: no single wall time
    assert main(["speed", "--floor", str(tmp_path), "--peak", "100"]) == 0
    assert "several invocations" in capsys.readouterr().out


def test_speed_measures_bf16_by_default_only_where_the_cpu_does_it_natively(
    tiny_csv, tiny_model, tmp_path, monkeypatch
):
    from benchmark.grid import runtime

    out = tmp_path / "speed.json"
    for native, measured in ((False, {"fp32"}), (True, {"fp32", "bf16"})):
        monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda native=native: native)
        arguments = ["speed", "--dataset", str(tiny_csv), "--model", str(tiny_model), "--methods", "none"]
        assert main(arguments + ["--threads", "1", "--jobs", "1", "--json", str(out)]) == 0
        assert set(json.loads(out.read_text())["peak_gflops"]) == measured


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--json", "{tmp}/no/such/speed.json"], "--json {tmp}/no/such/speed.json: no such folder"),
        (["--precisions", "fp16"], "--precisions: expected fp32 and/or bf16"),
        (["--threads", "0"], "--threads: 0 is not a positive number"),
        (["--floor", "{tmp}"], "not a run folder"),
    ],
)
def test_speed_mistakes_are_one_line_errors_before_anything_is_measured(arguments, message, tmp_path, capsys):
    assert main(["speed", *(a.format(tmp=tmp_path) for a in arguments)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(tmp=tmp_path) in err
