"""Task-adaptive masked-LM training (Gururangan et al. 2020): continue an encoder's pretraining on a task's
unlabelled texts, once, and hand the adapted body to every cell that asks for it.

- `mask_tokens`: BERT's corruption. Per text, round(rate x maskable tokens) positions (at least one; special
  tokens and padding are never picked), as BERT's ``create_pretraining_data``; of those, 80% become [MASK],
  10% a random token, 10% stay as they are. Every picked position is a target.
- `masked_lm_loss`: the vocabulary head runs on the picked positions only. The stock ``*ForMaskedLM`` forward
  computes 30k-wide logits at every position, which costs about as much as the whole 6-layer encoder: for
  all-MiniLM-L6-v2 on 1 thread a step of 32 snippets takes 2.55 s with it, 1.38 s with this. The loss and
  gradients are the same (see tests/test_mlm.py).
- `train_mlm`: the loop. AdamW (fused), linear warm-up then decay, gradient clipping at 1.0, length-bucketed
  batches, the run's precision; seeded by the MLM hyperparameters only, so every seed and budget shares it.
- `adapted_body`: memory cache (one entry per MLM configuration used in the process) -> disk cache under
  ``<cache_dir>/mlm/<key>/`` (guarded by a file lock, written atomically) -> training. The key hashes the
  model fingerprint and max length, the texts, the MLM hyperparameters and the precision; never the budget
  or the seed.

The masked-LM model is ``AutoModelForMaskedLM`` over the checkpoint, so any model whose masked-LM class is the
base model plus one head module mapping hidden states to vocabulary logits works (BERT, RoBERTa/XLM-R, MPNet).
A checkpoint without masked-LM weights (such as all-MiniLM-L6-v2, a sentence-transformers body) gets a head
whose transform layer (dense + LayerNorm) and bias are freshly initialised, while the decoder stays tied to
the word embeddings; the early steps then train the transform as much as they adapt the encoder.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmark import modeling
from benchmark.errors import UsageError

if TYPE_CHECKING:
    import torch

FORMAT = 1  # bump when the training recipe changes, so cached encoders from the old recipe are not reused
FACTS = "mlm.json"  # written last: a folder holding it is complete


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


@dataclass
class Adapted:
    """How the adapted body was obtained in this call, for the cell's record."""

    cache: str  # "hit" (memory or disk) or "miss" (trained in this call)
    seconds: float  # spent in this call training or loading it: one-off work, not the cell's
    facts: dict  # from training: seconds, loss (mean per epoch; final = the last epoch's), texts, epochs, steps

    @property
    def resolved(self) -> dict:
        return {
            "mlm_cache": self.cache,
            "mlm_train_seconds": self.facts["train_seconds"],
            "mlm_final_loss": self.facts["final_loss"],
            "mlm_epoch_losses": self.facts["epoch_losses"],
            "mlm_texts": self.facts["texts"],
            "mlm_epochs": self.facts["epochs"],
            "mlm_steps": self.facts["steps"],
        }


# (cache folder, key) -> (adapted body on CPU, facts). Per cache folder: a process that runs a second grid
# with another folder must still leave the encoder there for that grid's workers to load.
_memory: dict[tuple[str | None, str], tuple[object, dict]] = {}


def clear_memory_cache() -> None:
    _memory.clear()


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
    """The encoder body after masked-LM training on ``ctx.unlabelled``, and how it was obtained.

    The caller gets its own copy (fine-tuning changes it). Leaves the global RNG state as it found it, so the
    cell's head initialisation and dropout do not depend on whether the encoder was trained or loaded."""
    import torch

    started = time.perf_counter()
    key = cache_key(ctx.model, ctx.unlabelled, config, ctx.precision)
    slot = (str(ctx.cache_dir) if ctx.cache_dir else None, key)
    device = torch.device(ctx.device)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        if slot not in _memory:
            if ctx.cache_dir is None:
                (body, facts), cache = train_mlm(ctx, config), "miss"
            else:
                body, facts, cache = _disk_cached(ctx, config, key)
            _memory[slot] = (body.cpu(), facts)
        else:
            cache = "hit"
        body, facts = _memory[slot]
        body = copy.deepcopy(body)
    return body, Adapted(cache, time.perf_counter() - started, facts)


def _disk_cached(ctx, config: MLMConfig, key: str):
    from filelock import FileLock

    folder = Path(ctx.cache_dir) / "mlm" / key
    folder.parent.mkdir(parents=True, exist_ok=True)
    # another process asking for the same key waits here and then loads what the first one wrote
    with FileLock(f"{folder}.lock"):
        if (folder / FACTS).is_file():
            facts = json.loads((folder / FACTS).read_text())
            return modeling.load_body(ctx.model, folder), facts, "hit"
        body, facts = train_mlm(ctx, config)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder.parent))
        try:
            body.save_pretrained(scratch)
            (scratch / FACTS).write_text(json.dumps({"key": key, **facts}, indent=1))
            if folder.exists():  # left by hand or by an older layout: never complete, since FACTS is missing
                shutil.rmtree(folder)
            os.rename(scratch, folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return body, facts, "miss"


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
    from transformers import get_linear_schedule_with_warmup

    if not ctx.unlabelled:
        raise UsageError("mlm needs the unlabelled texts of the train pool; none were given")
    started = time.perf_counter()
    torch.manual_seed(config.seed)  # dropout; the caller has forked the RNG state
    tokenizer = modeling.load_tokenizer(ctx.model)
    if tokenizer.mask_token_id is None:
        raise UsageError(f"mlm: the tokenizer of {ctx.model.name} has no mask token")
    model, body, head = load_masked_lm(ctx.model)
    tokens = modeling.Tokens.of(tokenizer, ctx.unlabelled, ctx.model.max_length)
    batch_size = min(config.batch_size, len(tokens))
    steps = config.epochs * math.ceil(len(tokens) / batch_size)

    device = ctx.device
    model.to(device).train()
    params = list(model.parameters())  # tied weights appear once
    optimizer = modeling.adamw(params, config.lr, config.weight_decay, device)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    special_ids, vocab_size = list(tokenizer.all_special_ids), model.get_output_embeddings().out_features
    lengths = tokens.lengths
    step_losses, epoch_losses = [], []
    for _ in range(config.epochs):
        epoch_start = len(step_losses)
        for index in modeling.train_batches(lengths, batch_size, rng):
            input_ids, attention_mask = tokens.batch(index, "cpu")
            corrupted, picked = mask_tokens(
                input_ids,
                attention_mask,
                special_ids,
                tokenizer.mask_token_id,
                vocab_size,
                config.mask_rate,
                generator,
            )
            if not picked.any():  # only texts without maskable tokens (e.g. all [UNK]): nothing to predict
                continue
            with modeling.autocast(ctx):
                loss = masked_lm_loss(
                    body,
                    head,
                    corrupted.to(device),
                    attention_mask.to(device),
                    input_ids.to(device),
                    picked.to(device),
                )
            modeling.optimizer_step(loss, params, optimizer, scheduler, "masked-LM loss")
            step_losses.append(loss.item())
        if len(step_losses) == epoch_start:
            raise UsageError("mlm: the unlabelled texts have no maskable tokens (only special or unknown ones)")
        epoch_losses.append(round(float(np.mean(step_losses[epoch_start:])), 4))

    adapted = modeling.load_body(ctx.model)
    # the masked-LM base model may lack parts of the bare model (BERT's pooler), which keep their checkpoint
    # values; the classifier reads the hidden states, not the pooler
    unexpected = adapted.load_state_dict(body.state_dict(), strict=False).unexpected_keys
    if unexpected:
        raise UsageError(f"mlm: the masked-LM base model has weights the bare model lacks: {unexpected[:3]}")
    adapted.eval()
    facts = {
        "train_seconds": round(time.perf_counter() - started, 2),
        "final_loss": epoch_losses[-1],
        "epoch_losses": epoch_losses,
        "loss_curve": _curve(step_losses, points=20),
        "texts": len(tokens),
        "epochs": config.epochs,
        "steps": steps,
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
