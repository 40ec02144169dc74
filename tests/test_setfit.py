"""SetFit on the tiny random BERT: the step cap bounds the optimizer steps actually run (and never lengthens a
small budget), the paper protocol's pair count, pair batches by length (the loss and gradients stay the
library's), determinism, silence, and nothing written to the working directory."""

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("setfit")

from conftest import ROOT  # noqa: E402

from benchmark.budget import Budget  # noqa: E402
from benchmark.context import Context  # noqa: E402
from benchmark.data import sampling  # noqa: E402
from benchmark.registry import available  # noqa: E402
from methods.setfit import length_grouped_batches, pair_count  # noqa: E402


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
    info = method.fit(sampling.sample(tiny_task, Budget(4), seed), Context(tiny_spec, tiny_task.num_labels, seed))
    return method, info


def test_step_cap_stops_training_at_the_cap_per_class(tiny_task, tiny_spec, optimizer_steps):
    _, info = fit(tiny_task, tiny_spec, max_steps_per_class=3)
    assert len(optimizer_steps) == 6  # 2 classes
    resolved = info.resolved
    assert resolved["steps"] == 6 and resolved["step_cap_applied"]
    assert resolved["steps_uncapped"] == 20  # 2 x 20 iterations x 8 examples = 320 pairs, batch 16


def test_the_default_cap_never_cuts_the_papers_protocol_at_64_per_class():
    from methods.setfit import SetFit, pair_count

    for classes in (2, 3, 5, 20):
        labels = [label for label in range(classes) for _ in range(64)]
        steps = pair_count(labels, SetFit.num_iterations) / SetFit.batch_size
        assert steps <= SetFit.max_steps_per_class * classes


def test_paper_protocol_at_a_small_budget_runs_uncapped_for_one_epoch(tiny_task, tiny_spec, optimizer_steps):
    # the default cap (250 per class) is above the 20 steps this budget needs; it must not stretch training
    _, info = fit(tiny_task, tiny_spec)
    assert info.resolved["pairs"] == 2 * 20 * 8
    assert len(optimizer_steps) == info.resolved["steps"] == 20
    assert not info.resolved["step_cap_applied"] and info.resolved["epochs"] == 1


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
    fit(tiny_task, tiny_spec, max_steps_per_class=1)
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


def words(texts, truncation, max_length):
    """A tokenizer stand-in: one token per word, truncated as the real one."""
    return {"input_ids": [text.split()[:max_length] for text in texts]}


def pairs_of_mixed_length(n: int):
    from datasets import Dataset

    rng = np.random.default_rng(0)
    texts = [" ".join(["w"] * int(k)) + f" {i}" for i, k in enumerate(rng.integers(1, 60, size=40))]
    first, second = rng.integers(0, len(texts), size=(2, n))
    return Dataset.from_dict(
        {"sentence_1": [texts[i] for i in first], "sentence_2": [texts[i] for i in second], "label": [1.0] * n}
    )


def padded_tokens(dataset, batches, by_length: bool) -> int:
    """Tokens a pair batch computes: two forwards, each padded to its longest text. By column (the library's
    loss), or the longer texts of the pairs together and the shorter together (`pairs_by_length_loss`)."""
    first, second = (np.array([len(t.split()) for t in dataset[side]]) for side in ("sentence_1", "sentence_2"))
    if by_length:
        first, second = np.maximum(first, second), np.minimum(first, second)
    return sum(len(b) * (first[b].max() + second[b].max()) for b in map(list, batches))


def test_length_grouped_pair_batches_use_every_pair_once_reshuffle_per_epoch_and_cut_padding():
    dataset = pairs_of_mixed_length(330)
    sampler = length_grouped_batches(words, max_length=512)(dataset, batch_size=16, drop_last=False, seed=3)
    epoch0 = list(sampler)
    assert sorted(i for batch in epoch0 for i in batch) == list(range(330))
    assert len(epoch0) == len(sampler) == 21 and sum(len(b) < 16 for b in epoch0) == 1
    assert epoch0 == list(sampler)  # same seed and epoch: same batches
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    shuffled = np.array_split(np.random.default_rng(3).permutation(330), 21)
    assert padded_tokens(dataset, epoch0, by_length=True) < 0.7 * padded_tokens(dataset, shuffled, by_length=False)


def test_grouping_by_the_shorter_text_too_cuts_padding_beyond_grouping_by_the_longer_alone():
    from benchmark.modeling import train_batches

    dataset = pairs_of_mixed_length(800)
    sampler = length_grouped_batches(words, max_length=512)(dataset, batch_size=16, drop_last=False, seed=3)
    by_longer = train_batches(sampler.longer, 16, np.random.default_rng(3))
    assert padded_tokens(dataset, list(sampler), True) < 0.92 * padded_tokens(dataset, by_longer, True)


@pytest.fixture()
def tiny_body(tiny_spec):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(tiny_spec.path, device="cpu").eval()  # eval: no dropout, so losses compare exactly


def pair_features(body, first, second, padding_side="right"):
    body.tokenizer.padding_side = padding_side
    try:
        return [body.preprocess(first), body.preprocess(second)]
    finally:
        body.tokenizer.padding_side = "right"


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pairs_by_length_loss_equals_the_library_loss_and_its_gradients(tiny_body, padding_side):
    import torch
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

    from methods.setfit import pairs_by_length_loss

    first = ["a b c d e f g h i j", "a", "b c", "d e f g h i j k l m n o p", "q"]
    second = ["k", "l m n o p q r s t u v", "w x y", "z", "a b c d e f g h"]
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    results = []
    for loss in (CosineSimilarityLoss(tiny_body), pairs_by_length_loss()(tiny_body)):
        tiny_body.zero_grad()
        value = loss(pair_features(tiny_body, first, second, padding_side), labels)
        value.backward()
        results.append((value.detach(), [p.grad.clone() for p in tiny_body.parameters() if p.grad is not None]))
    (library, library_grads), (ours, our_grads) = results
    torch.testing.assert_close(ours, library)
    assert len(our_grads) == len(library_grads) > 0
    for a, b in zip(our_grads, library_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_pairs_by_length_loss_embeds_the_longer_texts_together_and_the_shorter_together(tiny_body, monkeypatch):
    import torch

    from methods.setfit import pairs_by_length_loss

    widths = []
    forward = type(tiny_body).forward

    def recording(self, features, *args, **kwargs):
        widths.append(tuple(features["attention_mask"].sum(1).tolist()) + (features["input_ids"].shape[1],))
        return forward(self, features, *args, **kwargs)

    monkeypatch.setattr(type(tiny_body), "forward", recording)
    first, second = ["a b c d e f g h", "a"], ["b", "c d e f g h i j"]  # each column holds one long, one short
    pairs_by_length_loss()(tiny_body)(pair_features(tiny_body, first, second), torch.tensor([1.0, 0.0]))
    (long_a, long_b, long_width), (short_a, short_b, short_width) = widths
    assert long_width == max(long_a, long_b) and short_width == max(short_a, short_b)
    assert max(short_a, short_b) < min(long_a, long_b)  # the library would pad both forwards to the long text


def test_length_grouped_pair_batches_honour_drop_last():
    dataset = pairs_of_mixed_length(330)
    batches = list(length_grouped_batches(words, 512)(dataset, batch_size=16, drop_last=True, seed=0))
    assert len(batches) == 330 // 16 and {len(b) for b in batches} == {16}


@pytest.mark.parametrize("group_by_length", [True, False])
def test_the_trainer_draws_its_pair_batches_from_the_length_grouped_sampler_and_loss_when_asked(
    tiny_task, tiny_spec, monkeypatch, group_by_length
):
    import methods.setfit

    drawn = []

    def counting(tokenizer, max_length):
        sampler = length_grouped_batches(tokenizer, max_length)

        class Counting(sampler):
            def __iter__(self):
                for batch in super().__iter__():
                    drawn.append(batch)
                    yield batch

        return Counting

    losses = []
    loss = methods.setfit.pairs_by_length_loss()

    def counting_loss():
        class Counting(loss):
            def forward(self, sentence_features, labels):
                losses.append(1)
                return super().forward(sentence_features, labels)

        return Counting

    monkeypatch.setattr(methods.setfit, "length_grouped_batches", counting)
    monkeypatch.setattr(methods.setfit, "pairs_by_length_loss", counting_loss)
    _, info = fit(tiny_task, tiny_spec, num_iterations=2, group_by_length=group_by_length)
    assert info.resolved["batches"] == ("length-paired" if group_by_length else "shuffled")
    assert len(drawn) == len(losses) == (info.resolved["steps"] if group_by_length else 0)


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


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_setfit_trains_and_predicts_in_the_runs_precision(tiny_task, tiny_spec, precision):
    """A record that says bf16 must come from bf16 work: the body's forwards run in the run's precision."""
    import torch

    seen = set()
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, output: seen.add(output.dtype) if type(module).__name__ == "Linear" else None
    )
    try:
        method = available()["setfit"].build({"num_iterations": 2})
        ctx = Context(tiny_spec, tiny_task.num_labels, 0, precision=precision)
        method.fit(sampling.sample(tiny_task, Budget(4), 0), ctx)
        method.predict(tiny_task.test.texts)
    finally:
        hook.remove()
    assert seen == ({torch.bfloat16} if precision == "bf16" else {torch.float32})


def test_a_bf16_fit_follows_the_fp32_fit_step_by_step(tiny_spec):
    """One autocast context spans SetFit's whole training: with autocast's cache of bf16 weight copies, every
    forward after the first used the initial weights, so bf16 training took another path than fp32 (SetFit lost
    12 points at 64 per class). With weights cast afresh, bf16 only rounds: its weights end near fp32's (measured
    on this tiny model: 4% of the distance training moved them, against 34% with the cache)."""
    import torch
    from conftest import synthetic_rows
    from sentence_transformers import SentenceTransformer

    from benchmark.data.tasks import Split
    from methods.setfit import SetFit

    def flat(model):
        return torch.cat([p.detach().flatten().float() for p in model.parameters()])

    rows = synthetic_rows(8, seed=4)
    train = Split([t for t, _ in rows], np.array([int(label == "pos") for _, label in rows]))
    weights = {}
    for precision in ("fp32", "bf16"):
        method = SetFit(num_iterations=2, lr=0.01, warmup_ratio=0.0)  # large steps: the weights move far
        method.fit(train, Context(tiny_spec, num_labels=2, seed=0, device="cpu", precision=precision))
        weights[precision] = flat(method._model.model_body)
    moved = (weights["fp32"] - flat(SentenceTransformer(tiny_spec.path, device="cpu"))).norm()
    assert (weights["bf16"] - weights["fp32"]).norm() < 0.15 * moved
