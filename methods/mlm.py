"""Task-adaptive pretraining (TAPT, Gururangan et al. 2020): masked-LM training of the encoder on the
unlabelled texts of the whole train pool, then the same fine-tune as `full` on the budget's labelled sample.
``mlm-N`` is ``mlm`` with N MLM epochs.

The adapted encoder depends on the model, the pool's texts, the MLM hyperparameters and the precision, never on
the budget or seed: it is trained once (seeded by ``mlm_seed``) as one-off work and reused by every cell, from
memory within a run and from ``<cache_dir>/mlm/`` across runs. Its cost is reported apart from each cell's
fine-tune.

- `mask_tokens`: BERT's corruption. Per text, round(rate x maskable tokens) positions (at least one; special
  tokens and padding are never picked), as BERT's ``create_pretraining_data``; of those, 80% become [MASK],
  10% a random token, 10% stay as they are. Every picked position is a target.
- `masked_lm_loss`: the vocabulary head runs on the picked positions only (the stock ``*ForMaskedLM`` forward
  computes 30k-wide logits at every position, about as costly as the whole 6-layer encoder); the loss and
  gradients are the stock ones (tests/test_mlm.py).
- `train_mlm`: the harness's training loop (`benchmark.modeling.train`) over length-bucketed batches of the
  pool, in the run's precision.

The masked-LM model is ``AutoModelForMaskedLM`` over the checkpoint, so any model whose masked-LM class is the
base model plus one head module mapping hidden states to vocabulary logits works (BERT, RoBERTa/XLM-R, MPNet).
A checkpoint without masked-LM weights (such as all-MiniLM-L6-v2, a sentence-transformers body) gets a head
whose transform layer (dense + LayerNorm) and bias are freshly initialised, while the decoder stays tied to the
word embeddings; the early steps then train the transform as much as they adapt the encoder.

Defaults: BERT's masking (15%, 80/10/10), batch 32, AdamW at 1e-4 (continued-pretraining recipes use 5e-5 to
1e-4; the top end because the budget is a few epochs), 6% warm-up (RoBERTa's and Gururangan's), weight decay
0.01, and 1 epoch. The literature runs 10 (Hands-On LLMs) to 100 (Gururangan et al., small tasks) epochs,
which on a CPU costs hours; a second epoch on the embedded default gained a point within seed noise at twice
the one-off cost (docs/methods.md). Where compute allows, run ``mlm-2`` or ``mlm-10`` beside it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
from annotated_types import Ge, Gt, Lt

from benchmark import modeling
from benchmark.errors import UsageError
from benchmark.record import FitResult
from benchmark.registry import register
from methods.finetune import FineTune

if TYPE_CHECKING:
    import torch

FORMAT = 1  # bump when the training recipe changes, so cached encoders from the old recipe are not reused
FACTS = "mlm.json"


@register("mlm", uses_unlabelled=True, numbered="mlm_epochs", default=7, bf16_evidence=1)
@dataclass
class Mlm(FineTune):
    """Masked-LM training on the unlabelled train pool (TAPT; mlm-N: N epochs), then full fine-tuning."""

    mlm_epochs: Annotated[int, Ge(1)] = 1  # passes over the unlabelled pool; the one-off cost grows with it
    mlm_lr: Annotated[float, Gt(0)] = 1e-4
    mlm_batch_size: Annotated[int, Ge(1)] = 32
    mlm_mask_rate: Annotated[float, Gt(0), Lt(1)] = 0.15
    mlm_warmup_ratio: Annotated[float, Ge(0), Lt(1)] = 0.06
    mlm_weight_decay: Annotated[float, Ge(0)] = 0.01
    mlm_seed: int = 0  # fixed, not the cell's seed: every cell shares one adapted encoder

    def mlm_config(self) -> MLMConfig:
        return MLMConfig(
            self.mlm_epochs,
            self.mlm_lr,
            self.mlm_batch_size,
            self.mlm_mask_rate,
            self.mlm_warmup_ratio,
            self.mlm_weight_decay,
            self.mlm_seed,
        )

    def load_body(self, ctx):
        body, self._facts = adapted_body(ctx, self.mlm_config())
        return body

    def precompute(self, ctx) -> None:
        """The adapted encoder, which every cell of this MLM configuration starts from."""
        adapted_body(ctx, self.mlm_config())

    def fit(self, train, ctx) -> FitResult:
        result = super().fit(train, ctx)
        facts = self._facts
        result.resolved |= {
            "mlm_final_loss": facts["final_loss"],
            "mlm_epoch_losses": facts["epoch_losses"],
            "mlm_texts": facts["texts"],
            "mlm_epochs": facts["epochs"],
            "mlm_steps": facts["steps"],
        }
        return result


@dataclass(frozen=True)
class MLMConfig:
    """Everything besides the model, texts and precision that determines the adapted encoder."""

    epochs: int
    lr: float
    batch_size: int
    mask_rate: float
    warmup_ratio: float
    weight_decay: float
    seed: int


def cache_key(spec: modeling.ModelSpec, texts: list[str], config: MLMConfig, precision: str) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(len(text.encode()).to_bytes(8, "little") + text.encode())
    identity = {
        "format": FORMAT,
        "model": spec.fingerprint,
        "max_length": spec.max_length,
        "texts": digest.hexdigest(),
        "config": asdict(config),
        "precision": precision,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def adapted_body(ctx, config: MLMConfig):
    """(the encoder body after masked-LM training on ``ctx.unlabelled``, the facts of that training).

    The caller gets its own copy (fine-tuning changes it). Leaves the global RNG state as it found it, so the
    cell's head initialisation and dropout do not depend on whether the encoder was trained or loaded."""
    import torch

    def build():
        body, facts = train_mlm(ctx, config)
        return body.cpu(), facts

    def save(artifact, folder: Path) -> None:
        body, facts = artifact
        body.save_pretrained(folder)
        (folder / FACTS).write_text(json.dumps(facts, indent=1))

    def load(folder: Path):
        return modeling.load_body(ctx.model, folder), json.loads((folder / FACTS).read_text())

    device = torch.device(ctx.device)
    key = cache_key(ctx.model, ctx.unlabelled, config, ctx.precision)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        body, facts = ctx.one_off("mlm", key, build, save, load)
    return copy.deepcopy(body), facts


# --- the masked-LM model ----------------------------------------------------------------------------


def load_masked_lm(spec: modeling.ModelSpec):
    """(model, body, head): the checkpoint as ``AutoModelForMaskedLM``, its base model, and the module that
    maps hidden states to vocabulary logits position by position (BERT: ``cls``, RoBERTa: ``lm_head``)."""
    from transformers import AutoModelForMaskedLM

    modeling.quiet_transformers()
    model = AutoModelForMaskedLM.from_pretrained(
        spec.path, use_safetensors=True, trust_remote_code=spec.trust_remote_code
    )
    heads = [module for name, module in model.named_children() if name != model.base_model_prefix]
    if len(heads) != 1:
        raise UsageError(
            f"mlm: {type(model).__name__} has {len(heads)} modules besides its base model; "
            "only masked-LM models with a single vocabulary head are supported"
        )
    return model, model.base_model, heads[0]


def mask_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    special_ids: list[int],
    mask_id: int,
    vocab_size: int,
    rate: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(corrupted input_ids, picked positions as a bool tensor); the targets are ``input_ids[picked]``."""
    import torch

    special = torch.tensor(special_ids, dtype=input_ids.dtype)
    maskable = attention_mask.bool() & ~torch.isin(input_ids, special)
    counts = maskable.sum(1)
    quota = torch.where(counts > 0, torch.clamp(torch.floor(counts * rate + 0.5), min=1), 0).long()
    scores = torch.rand(input_ids.shape, generator=generator).masked_fill(~maskable, -1.0)
    rank = scores.argsort(dim=1, descending=True).argsort(dim=1)
    picked = rank < quota.unsqueeze(1)
    action = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, dtype=input_ids.dtype)
    corrupted = torch.where(picked & (action < 0.8), mask_id, input_ids)
    corrupted = torch.where(picked & (action >= 0.8) & (action < 0.9), random_ids, corrupted)
    return corrupted, picked


def masked_lm_loss(body, head, corrupted, attention_mask, targets, picked) -> torch.Tensor:
    """Mean cross-entropy over the picked positions, the vocabulary head applied to those positions only."""
    import torch

    hidden = body(input_ids=corrupted, attention_mask=attention_mask).last_hidden_state
    logits = head(hidden[picked])
    return torch.nn.functional.cross_entropy(logits.float(), targets[picked])


def train_mlm(ctx, config: MLMConfig):
    """Masked-LM training on ``ctx.unlabelled``: (the adapted body as the checkpoint's bare model, facts)."""
    import torch

    if not ctx.unlabelled:
        raise UsageError("mlm needs the unlabelled texts of the train pool; none were given")
    torch.manual_seed(config.seed)  # the head's fresh weights and dropout; the caller has forked the RNG state
    tokenizer = modeling.load_tokenizer(ctx.model)
    if tokenizer.mask_token_id is None:
        raise UsageError(f"mlm: the tokenizer of {ctx.model.name} has no mask token")
    model, body, head = load_masked_lm(ctx.model)
    tokens = modeling.Tokens.of(tokenizer, ctx.unlabelled, ctx.model.max_length)
    schedule = modeling.Schedule(config.batch_size, 0, config.epochs, config.epochs).resolve(len(tokens))
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    special_ids, vocab_size = list(tokenizer.all_special_ids), model.get_output_embeddings().out_features
    device = ctx.device

    def loss_of(index: np.ndarray) -> torch.Tensor | None:
        input_ids, attention_mask = tokens.batch(index, "cpu")
        corrupted, picked = mask_tokens(
            input_ids, attention_mask, special_ids, tokenizer.mask_token_id, vocab_size, config.mask_rate, generator
        )
        if not picked.any():  # only texts without maskable tokens (e.g. all [UNK]): nothing to predict
            return None
        return masked_lm_loss(
            body, head, corrupted.to(device), attention_mask.to(device), input_ids.to(device), picked.to(device)
        )

    losses = modeling.train(
        model,
        lambda: modeling.train_batches(tokens.lengths, schedule["batch_size"], rng),
        loss_of,
        schedule["epochs"],
        schedule["steps"],
        modeling.Optimization(config.lr, config.weight_decay, config.warmup_ratio),
        ctx.placement,
        "masked-LM loss",
    )
    if not all(losses):
        raise UsageError("mlm: the unlabelled texts have no maskable tokens (only special or unknown ones)")
    adapted = modeling.load_body(ctx.model)
    # the masked-LM base model may lack parts of the bare model (BERT's pooler), which keep their checkpoint
    # values; the classifier reads the hidden states, not the pooler
    unexpected = adapted.load_state_dict(body.state_dict(), strict=False).unexpected_keys
    if unexpected:
        raise UsageError(f"mlm: the masked-LM base model has weights the bare model lacks: {unexpected[:3]}")
    adapted.eval()
    epoch_losses = [round(float(np.mean(epoch)), 4) for epoch in losses]
    facts = {
        "final_loss": epoch_losses[-1],
        "epoch_losses": epoch_losses,
        "loss_curve": _curve([loss for epoch in losses for loss in epoch], points=20),
        "texts": len(tokens),
        "epochs": config.epochs,
        "steps": schedule["steps"],
        "model_fingerprint": ctx.model.fingerprint,
        "config": asdict(config),
        "precision": ctx.precision,
        "device": ctx.device,
        "threads": torch.get_num_threads(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return adapted, facts


def _curve(losses: list[float], points: int) -> dict:
    """Mean loss over consecutive windows of steps: the shape of training, small enough for a JSON file."""
    every = max(1, math.ceil(len(losses) / points))
    means = [round(float(np.mean(losses[i : i + every])), 3) for i in range(0, len(losses), every)]
    return {"every_steps": every, "means": means}
