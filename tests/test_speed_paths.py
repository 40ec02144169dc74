"""The fast paths give the same answers as the slow ones: bucketed batches, the feature cache, the speed report."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import torch

from benchmark import modeling
from benchmark.cli import main
from benchmark.context import Context, FeatureStore


def test_bucketed_inference_is_in_input_order_and_equals_one_text_at_a_time(tiny_spec, tiny_task):
    tokenizer = modeling.load_tokenizer(tiny_spec)
    torch.manual_seed(0)
    model = modeling.build_classifier(modeling.load_body(tiny_spec), tiny_spec.pooling, 2)
    texts = list(tiny_task.train.texts[:40])
    tokens = modeling.Tokens.of(tokenizer, texts, tiny_spec.max_length)
    ctx = Context(tiny_spec, 2, 0)
    bucketed = modeling.predict_logits(model, tokens, ctx, batch_size=8)
    one_by_one = np.concatenate(
        [modeling.predict_logits(model, modeling.Tokens([ids], tokens.pad_id), ctx) for ids in tokens.ids]
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


def store(spec, texts, key, cache_dir):
    return FeatureStore(spec, "cpu", "fp32", texts, key, cache_dir)


def test_feature_cache_hit_equals_recomputation_and_changed_keys_miss(tiny_spec, tiny_task, tmp_path):
    texts = list(tiny_task.train.texts)
    cold = store(tiny_spec, texts, "dataset-a", tmp_path)
    computed = cold.lookup(texts[:5])
    assert cold.path.is_file()
    warm = store(tiny_spec, texts, "dataset-a", tmp_path)
    warm._encode = lambda _: (_ for _ in ()).throw(AssertionError("a cache hit must not encode"))
    assert np.array_equal(warm.lookup(texts[:5]), computed)
    assert np.allclose(store(tiny_spec, texts, "dataset-a", None).lookup(texts[:5]), computed, atol=1e-6)
    other_length = dataclasses.replace(tiny_spec, max_length=8)
    other_model = dataclasses.replace(tiny_spec, fingerprint="another-model")
    keys = {
        cold.key,
        store(tiny_spec, texts, "dataset-b", tmp_path).key,
        store(other_length, texts, "dataset-a", tmp_path).key,
        store(other_model, texts, "dataset-a", tmp_path).key,
    }
    assert len(keys) == 4


def test_a_feature_cache_hit_reports_what_computing_them_took_and_an_entry_without_it_is_computed_again(
    tiny_spec, tiny_task, tmp_path
):
    texts = list(tiny_task.train.texts)
    cold = store(tiny_spec, texts, "dataset-a", tmp_path)
    cold.lookup(texts[:5])
    warm = store(tiny_spec, texts, "dataset-a", tmp_path)
    warm.lookup(texts[:5])
    assert cold.compute_seconds > 0 and warm.compute_seconds == cold.compute_seconds
    cold.path.with_suffix(".json").unlink()  # as a run killed between writing the features and their facts
    again = store(tiny_spec, texts, "dataset-a", tmp_path)
    again._encode = lambda batch: np.zeros((len(batch), 32), dtype=np.float32)
    assert not again.lookup(texts[:5]).any() and again.path.with_suffix(".json").is_file()


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
