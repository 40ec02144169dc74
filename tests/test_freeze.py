"""Partial freezing on the tiny 4-block BERT: which weights train, how k resolves, the eval mode of the frozen
part, and the head-only fast path being the same method as the token path."""

import numpy as np
import pytest
from conftest import tiny_classifier

from benchmark import registry
from benchmark.budget import Budget
from benchmark.context import Context
from benchmark.data import sampling
from benchmark.modeling import load_body, seed_everything
from methods.finetune import FineTune
from methods.freeze import Freeze

SHORT = {"min_steps": 3, "max_epochs": 3}


def fit(method, task, spec, fit_function=None, shots: int = 4, seed: int = 0) -> dict:
    train = sampling.sample(task, Budget(shots), seed)
    seed_everything(seed)
    return (fit_function or type(method).fit)(method, train, Context(spec, task.num_labels, seed))


def build(name: str, **overrides) -> Freeze:
    (spec,) = registry.resolve([name])
    return spec.build(SHORT | overrides)


def test_freeze_k_freezes_embeddings_and_lowest_k_blocks_bit_for_bit(tiny_task, tiny_spec):
    method = build("freeze-2")
    info = fit(method, tiny_task, tiny_spec)
    assert info.resolved["frozen_blocks"] == 2
    frozen_prefixes = ("body.embeddings.", "body.encoder.layer.0.", "body.encoder.layer.1.")
    trained = {name for name, p in method._model.named_parameters() if p.requires_grad}
    assert trained == {name for name, _ in method._model.named_parameters() if not name.startswith(frozen_prefixes)}

    pretrained = {f"body.{k}": v for k, v in load_body(tiny_spec).state_dict().items()}
    after = method._model.state_dict()
    for name, value in pretrained.items():
        if name.startswith(frozen_prefixes):
            assert value.equal(after[name]), f"{name} changed although frozen"
        elif name.startswith(("body.encoder.layer.2.", "body.encoder.layer.3.")):
            assert not value.equal(after[name]), f"{name} did not train"
    assert info.trainable_params == sum(p.numel() for n, p in method._model.named_parameters() if n in trained)


def test_frozen_blocks_run_in_eval_mode_while_the_rest_trains(tiny_task, tiny_spec):
    modes: dict[int, set[bool]] = {}

    class Probe(Freeze):
        def prepare(self, model, ctx) -> None:
            super().prepare(model, ctx)
            for i, block in enumerate(model.body.encoder.layer):
                block.register_forward_hook(lambda m, args, out, i=i: modes.setdefault(i, set()).add(m.training))

    fit(Probe(frozen_blocks=2, **SHORT), tiny_task, tiny_spec)
    assert modes == {0: {False}, 1: {False}, 2: {True}, 3: {True}}


@pytest.mark.parametrize(("name", "expected"), [("freeze-half", 2), ("freeze", 2), ("freeze-head", 4), ("freeze-0", 0)])
def test_named_presets_resolve_to_a_number_of_blocks(name, expected, tiny_task, tiny_spec):
    info = fit(build(name), tiny_task, tiny_spec)
    assert info.resolved["frozen_blocks"] == expected
    if expected == 4:  # head only: the hidden_size x labels weights and the biases
        assert info.trainable_params == 32 * tiny_task.num_labels + tiny_task.num_labels


def test_more_blocks_than_the_model_has_is_a_clear_error(tiny_task, tiny_spec):
    with pytest.raises(ValueError, match=r"frozen_blocks=5, but the model has 4 encoder blocks"):
        fit(build("freeze-5"), tiny_task, tiny_spec)


def test_head_only_fast_path_matches_the_token_path(tiny_task, tiny_spec):
    """Cached pooled vectors vs the frozen body run on tokens in the shared loop: same init, dropout masks,
    batches and steps, so the same head and the same predictions."""
    texts = list(tiny_task.train.texts) + list(tiny_task.test.texts)
    settings = {"min_steps": 20, "max_epochs": 20}
    fast, slow = build("freeze-head", **settings), build("freeze-head", lr=1e-2, **settings)
    fast_info = fit(fast, tiny_task, tiny_spec, shots=8)
    slow_info = fit(slow, tiny_task, tiny_spec, FineTune.fit, shots=8)

    assert fast._head is not None and fast_info.trainable_params == slow_info.trainable_params
    assert fast_info.resolved["steps"] == slow_info.resolved["steps"] == 20
    weights = fast._head.linear.weight.detach().numpy()
    assert not np.allclose(weights, 0) and np.allclose(
        weights, slow._model.head.linear.weight.detach().numpy(), atol=1e-5
    )
    assert np.array_equal(fast.predict(texts), FineTune.predict(slow, texts))


@pytest.mark.parametrize(
    ("model_type", "blocks"),
    [
        ("roberta", "encoder.layer"),
        ("mpnet", "encoder.layer"),
        ("distilbert", "transformer.layer"),
        ("modernbert", "layers"),
    ],
)
def test_blocks_and_embeddings_are_found_across_architectures(model_type, blocks):
    model = tiny_classifier(model_type)
    Freeze(frozen_blocks=2).prepare(model, None)
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    expected = {
        name
        for name, _ in model.named_parameters()
        if name.startswith(("body.embeddings.", f"body.{blocks}.0.", f"body.{blocks}.1."))
    }
    assert frozen == expected and any(name.startswith(f"body.{blocks}.2.") for name, _ in model.named_parameters())


@pytest.mark.parametrize("model_type", ["bert", "distilbert"])
def test_block_count_is_read_from_the_config_under_either_name(model_type, tmp_path):
    """BERT's config says num_hidden_layers (read from config.json); DistilBERT's says n_layers (asked of
    transformers)."""
    from transformers import AutoConfig

    from benchmark.modeling import ModelSpec

    sizes = {"n_layers": 5} if model_type == "distilbert" else {"num_hidden_layers": 5}
    AutoConfig.for_model(model_type, **sizes).save_pretrained(tmp_path)
    assert ("num_hidden_layers" in (tmp_path / "config.json").read_text()) == (model_type == "bert")
    spec = ModelSpec(model_type, str(tmp_path), "mean", False, 64, "f")
    assert spec.num_blocks == 5
