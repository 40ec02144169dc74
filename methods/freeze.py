"""Partial freezing: fine-tune with the embeddings and the lowest `frozen_blocks` encoder blocks frozen.

The reference pattern is Hands-On Large Language Models (Alammar & Grootendorst), ch. 11: bert-base-cased on
Rotten Tomatoes, one epoch at 2e-5, scores F1 0.64 with only the head trained, 0.81 with blocks 0-9 of 12
frozen and 0.86 fully fine-tuned. So the lower blocks can stay fixed for little loss, but a head alone,
trained like that, is far behind.

Registered as ``freeze-head`` (every block frozen: only the head trains, the linear probe by gradient),
``freeze-half`` (num_hidden_layers // 2 blocks) and ``freeze-<k>`` (k blocks; plain ``freeze`` is
``freeze-half``). Frozen modules run in eval mode while the rest trains, so no dropout acts where nothing learns.
When every block is frozen the whole body is frozen (a pooler or final norm too): the body is then a fixed
function, and the head trains on the run's cached pooled vectors (`Context.frozen_features`), with the same
head, dropout, loop and batches as the token path, in seconds.

Defaults: those of `benchmark.finetune.FineTune` (AdamW, 10% warm-up, weight decay 0.01, batch 16, dropout 0.1
on the pooled vector, the shared budget rule), except the learning rate when every block is frozen
(``head_only_lr``, used instead of ``lr`` by ``freeze-head`` and ``freeze-<num_hidden_layers>``): 1e-2, SetFit's
``head_learning_rate`` for its differentiable head on a frozen sentence-transformer body (also AdamW with
weight decay 0.01). At the fine-tuning rate of 5e-5 a head alone barely leaves its random initialisation in
the budget's 50-100 steps; the book's head-only run (2e-5, 534 steps) ends at training loss 0.696, i.e. ln 2.
Measured on all-MiniLM-L6-v2 / rt-critics, seeds 0-4, macro-F1 at 8 / 64 per class: lr 5e-5 0.48 / 0.49
(training loss 0.69: chance), 1e-3 0.57 / 0.65, 3e-3 0.58 / 0.67, 1e-2 0.58 / 0.67; logistic regression on
the same features 0.59 / 0.67.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from benchmark import modeling
from benchmark.finetune import FineTune
from benchmark.registry import register


@register("freeze-head", frozen_blocks="all")
@register("freeze-half", frozen_blocks="half")
@register("freeze", numbered="frozen_blocks")
@dataclass
class Freeze(FineTune):
    """Fine-tuning with the embeddings and the lowest k encoder blocks frozen."""

    frozen_blocks: int | Literal["all", "half"] = "half"  # "half": num_hidden_layers // 2; "all": head only
    head_only_lr: float = 1e-2  # replaces `lr` when every block is frozen: SetFit's head_learning_rate

    def frozen_count(self, num_blocks: int) -> int:
        """`frozen_blocks` as a number of blocks of a body with `num_blocks`."""
        k = {"all": num_blocks, "half": num_blocks // 2}.get(self.frozen_blocks, self.frozen_blocks)
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= num_blocks:
            raise ValueError(
                f"frozen_blocks={self.frozen_blocks!r}, but the model has {num_blocks} encoder blocks: "
                f"use 0..{num_blocks}, 'half' or 'all'"
            )
        return k

    def blocks(self, ctx) -> tuple[int, int]:
        """(frozen, total) encoder blocks of the context's model, read from its config."""
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(ctx.model.path, trust_remote_code=ctx.model.trust_remote_code)
        return self.frozen_count(config.num_hidden_layers), config.num_hidden_layers

    def fit(self, train, ctx) -> dict:
        k, total = self.blocks(ctx)
        self._head = None
        info = self._fit_head(train, ctx) if k == total else super().fit(train, ctx)
        info["resolved"] = {"frozen_blocks": k, **info["resolved"]}
        return info

    def precompute(self, ctx) -> None:
        """Head only: the pooled vectors of the train pool and test split, which every cell reads."""
        k, total = self.blocks(ctx)
        if k == total:
            ctx.frozen_features([])

    def prepare(self, model, ctx) -> None:
        blocks = modeling.encoder_blocks(model.body)
        k = self.frozen_count(len(blocks))
        frozen = [model.body] if k == len(blocks) else [_embeddings(model.body), *blocks[:k]]
        for module in frozen:
            module.requires_grad_(False)
            # fine_tune puts the whole model in train mode; a frozen module switches itself back on every call
            module.register_forward_pre_hook(_run_in_eval_mode)

    def _fit_head(self, train, ctx) -> dict:
        """Every block frozen: the head trains on the cached pooled vectors, in the shared loop."""
        self._ctx = ctx
        self._tokenizer = modeling.load_tokenizer(ctx.model)
        inputs = PooledInputs.of(ctx, self._tokenizer, train.texts)
        self._head = _pooled_head(inputs.vectors.shape[1], ctx.num_labels, self.dropout)
        resolved = modeling.fine_tune(
            self._head,
            inputs,
            train.labels,
            ctx,
            self.schedule(),
            self.head_only_lr,
            self.weight_decay,
            self.warmup_ratio,
        )
        trainable, _ = modeling.count_params(self._head)
        return {"trainable_params": trainable, "total_params": ctx.model.num_params + trainable, "resolved": resolved}

    def predict(self, texts: list[str]) -> np.ndarray:
        if self._head is None:
            return super().predict(texts)
        inputs = PooledInputs.of(self._ctx, self._tokenizer, texts)
        return modeling.predict_logits(self._head, inputs, self._ctx).argmax(-1)


@dataclass
class PooledInputs:
    """Pooled vectors of the frozen body in the shape of `modeling.Tokens`, so that `modeling.fine_tune` and
    `modeling.predict_logits` run the head unchanged. `lengths` are the texts' token counts: the loop's
    length-bucketed batches are then the very batches the token path draws."""

    vectors: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, ctx, tokenizer, texts: list[str]) -> PooledInputs:
        import torch

        # the first lookup may build the encoder; that must not move the cell's random state
        with torch.random.fork_rng(devices=[]):
            vectors = ctx.frozen_features(texts, normalize=False)
        return cls(vectors, modeling.Tokens.of(tokenizer, texts, ctx.model.max_length).lengths)

    def __len__(self) -> int:
        return len(self.vectors)

    def batch(self, index: np.ndarray, device):
        import torch

        return torch.from_numpy(self.vectors[index]).to(device), None


def _pooled_head(width: int, num_labels: int, dropout: float):
    from torch import nn

    class PooledHead(nn.Module):
        """`modeling.build_classifier`'s dropout and linear head, created in the same order (same init)."""

        def __init__(self) -> None:
            super().__init__()
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(width, num_labels)

        def forward(self, pooled, mask=None):
            return self.head(self.dropout(pooled))

    return PooledHead()


def _embeddings(body):
    """The embedding module (word, position, type embeddings and their norm) or, failing that, the word
    embeddings alone."""
    from torch import nn

    module = getattr(body, "embeddings", None)
    return module if isinstance(module, nn.Module) else body.get_input_embeddings()


def _run_in_eval_mode(module, args) -> None:
    module.eval()
