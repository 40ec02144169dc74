"""LoRA on the tiny 4-block BERT (hidden 32): what trains, how much, and the target modules per architecture."""

import subprocess
import sys

import pytest
from conftest import ROOT, tiny_classifier

from benchmark.budget import Budget
from benchmark.context import Context
from benchmark.data import sampling
from benchmark.modeling import load_body, seed_everything
from methods.lora import LoRA

LAYERS, HIDDEN, INTERMEDIATE = 4, 32, 64


def fit(method, task, spec, seed: int = 0) -> dict:
    train = sampling.sample(task, Budget(4), seed)
    seed_everything(seed)
    return method.fit(train, Context(spec, task.num_labels, seed))


def adapted_modules(model) -> set[str]:
    return {name for name, module in model.named_modules() if hasattr(module, "lora_A")}


def test_trainable_params_are_adapters_on_query_value_plus_head(tiny_task, tiny_spec):
    for r in (8, 2):
        method = LoRA(r=r, min_steps=2, max_epochs=2)
        info = fit(method, tiny_task, tiny_spec)
        adapters = LAYERS * 2 * r * (HIDDEN + HIDDEN)  # A: r x in, B: out x r, on query and value
        head = HIDDEN * tiny_task.num_labels + tiny_task.num_labels
        assert info.trainable_params == adapters + head
    assert {name.rsplit(".", 1)[-1] for name in adapted_modules(method._model)} == {"query", "value"}


def test_base_weights_stay_pretrained_while_adapters_and_head_train(tiny_task, tiny_spec):
    method = LoRA(min_steps=3, max_epochs=3)
    fit(method, tiny_task, tiny_spec)
    pretrained = load_body(tiny_spec).state_dict()
    body = method._model.body
    for name, value in body.state_dict().items():
        if "lora_" not in name:
            assert value.equal(pretrained[name.replace(".base_layer", "")]), f"{name} changed"
    lora_b = [p for name, p in body.named_parameters() if "lora_B" in name]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # B starts at zero: non-zero means it trained


def test_architecture_without_a_peft_entry_gets_every_linear_layer_of_the_blocks(tiny_task, tiny_spec, monkeypatch):
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    monkeypatch.delitem(TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING, "bert")
    method = LoRA(min_steps=1, max_epochs=1)
    info = fit(method, tiny_task, tiny_spec)
    per_block = {
        "attention.self.query": (HIDDEN, HIDDEN),
        "attention.self.key": (HIDDEN, HIDDEN),
        "attention.self.value": (HIDDEN, HIDDEN),
        "attention.output.dense": (HIDDEN, HIDDEN),
        "intermediate.dense": (HIDDEN, INTERMEDIATE),
        "output.dense": (INTERMEDIATE, HIDDEN),
    }
    expected = {f"body.encoder.layer.{i}.{name}" for i in range(LAYERS) for name in per_block}
    assert adapted_modules(method._model) == expected  # not the pooler, not the head
    adapters = LAYERS * sum(method.r * (n_in + n_out) for n_in, n_out in per_block.values())
    assert info.trainable_params == adapters + HIDDEN * tiny_task.num_labels + tiny_task.num_labels


def test_method_modules_import_neither_torch_nor_peft():
    code = "import sys, methods.lora, methods.freeze; print(sorted({'torch', 'peft'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


UNMAPPED = [("mpnet", "encoder.layer"), ("distilbert", "transformer.layer"), ("modernbert", "layers")]


@pytest.mark.parametrize(("model_type", "blocks"), UNMAPPED)
def test_architectures_peft_does_not_know_get_adapters_on_every_linear_layer_of_their_blocks(model_type, blocks):
    from torch import nn

    model = tiny_classifier(model_type)
    linear = {name for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    LoRA().prepare(model, None)
    assert adapted_modules(model) == {name for name in linear if name.startswith(f"body.{blocks}.")}
    assert len(adapted_modules(model)) >= 3 * 4  # at least q/k/v (or fused qkv), out, and the MLP, in 3 blocks


def test_the_budget_rule_gives_lora_500_steps_under_the_epoch_cap_and_three_epochs_on_a_large_pool():
    from methods.full import Full

    lora, full = LoRA().schedule(), Full().schedule()
    assert lora.resolve(11_477)["epochs"] == 3 and full.resolve(11_477)["epochs"] == 1
    for n in (16, 24):  # 8 per class, 2 and 3 classes: the 50-epoch cap keeps full's schedule
        assert lora.resolve(n) == full.resolve(n)
    assert lora.resolve(40) == {"epochs": 50, "steps": 150, "batch_size": 16}  # 8 per class, 5 classes
    assert lora.resolve(192) == {"epochs": 42, "steps": 504, "batch_size": 16}  # 64 per class, 3 classes
    assert full.resolve(192)["steps"] == 108
    assert LoRA.revision == 2  # the schedule changed LoRA's results: records of revision 1 are superseded
