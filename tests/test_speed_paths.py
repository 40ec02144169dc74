"""The fast paths give the same answers as the slow ones: bucketed batches, the feature cache, the speed report."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import torch

from benchmark import cache, modeling
from benchmark.cache import OneOffCache
from benchmark.cli import main
from benchmark.context import Context, FeatureStore


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
