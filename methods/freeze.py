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

Defaults: those of `methods.finetune.FineTune` (AdamW, 10% warm-up, weight decay 0.01, batch 16, dropout 0.1
on the pooled vector, the shared budget rule), except the learning rate when every block is frozen
(``head_only_lr``, used instead of ``lr`` by ``freeze-head`` and ``freeze-<num_hidden_layers>``): 1e-2, SetFit's
``head_learning_rate`` for its differentiable head on a frozen sentence-transformer body (also AdamW with
weight decay 0.01). At the fine-tuning rate of 5e-5 a head alone barely leaves its random initialisation in
the budget's 50-100 steps (the book's head-only run, 2e-5 for 534 steps, ends at training loss ln 2);
docs/methods.md has the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from annotated_types import Ge, Gt

from benchmark import modeling
from benchmark.record import FitResult
from benchmark.registry import register
from methods.finetune import FineTune


@register("freeze-head", default=3, frozen_blocks="all", bf16_evidence=1)
@register("freeze-half", default=4, frozen_blocks="half", bf16_evidence=1)
@register("freeze", numbered="frozen_blocks")
@dataclass
class Freeze(FineTune):
    """Fine-tuning with the embeddings and the lowest k encoder blocks frozen."""

    frozen_blocks: Annotated[int, Ge(0)] | Literal["all", "half"] = "half"  # half: num_hidden_layers // 2; all: head
    head_only_lr: Annotated[float, Gt(0)] = 1e-2  # replaces `lr` when every block is frozen: SetFit's head rate

    def check(self, model: modeling.ModelSpec) -> None:
        super().check(model)
        self.frozen_count(model.num_blocks)

    def frozen_count(self, num_blocks: int) -> int:
        """`frozen_blocks` as a number of blocks of a body with `num_blocks`."""
        k = {"all": num_blocks, "half": num_blocks // 2}.get(self.frozen_blocks, self.frozen_blocks)
        if not 0 <= k <= num_blocks:
            raise ValueError(
                f"frozen_blocks={self.frozen_blocks!r}, but the model has {num_blocks} encoder blocks: "
                f"use 0..{num_blocks}, 'half' or 'all'"
            )
        return k

    def fit(self, train, ctx) -> FitResult:
        k, total = self.frozen_count(ctx.model.num_blocks), ctx.model.num_blocks
        self._head = None
        result = self._fit_head(train, ctx) if k == total else super().fit(train, ctx)
        result.resolved = {"frozen_blocks": k, **result.resolved}
        return result

    def precompute(self, ctx) -> None:
        """Head only: the pooled vectors of the train pool and test split, which every cell reads."""
        if self.frozen_count(ctx.model.num_blocks) == ctx.model.num_blocks:
            ctx.frozen_features([])

    def prepare(self, model, ctx) -> None:
        blocks = modeling.encoder_blocks(model.body)
        k = self.frozen_count(len(blocks))
        frozen = [model.body] if k == len(blocks) else [_embeddings(model.body), *blocks[:k]]
        for module in frozen:
            module.requires_grad_(False)
            # training puts the whole model in train mode; a frozen module switches itself back on every call
            module.register_forward_pre_hook(_run_in_eval_mode)

    def _fit_head(self, train, ctx) -> FitResult:
        """Every block frozen: the head trains on the cached pooled vectors, in the shared loop."""
        self._ctx = ctx
        self._tokenizer = modeling.load_tokenizer(ctx.model)
        inputs = self._pooled(train.texts)
        self._head = modeling.build_head(inputs.vectors.shape[1], ctx.num_labels, self.dropout)
        resolved = modeling.fine_tune(
            self._head,
            inputs,
            train.labels,
            self.schedule(),
            self.optimization(self.head_only_lr),
            ctx.placement,
            ctx.seed,
        )
        trainable, _ = modeling.count_params(self._head)
        return FitResult(trainable, ctx.model.num_params + trainable, resolved)

    def _pooled(self, texts: list[str]) -> modeling.Vectors:
        import torch

        # the first lookup may build the encoder; that must not move the cell's random state
        with torch.random.fork_rng(devices=[]):
            vectors = self._ctx.frozen_features(texts, normalize=False)
        lengths = modeling.Tokens.of(self._tokenizer, texts, self._ctx.model.max_length).lengths
        return modeling.Vectors(vectors, lengths)

    def predict(self, texts: list[str]) -> np.ndarray:
        if self._head is None:
            return super().predict(texts)
        return modeling.predict_logits(self._head, self._pooled(texts), self._ctx.placement).argmax(-1)


def _embeddings(body):
    """The embedding module (word, position, type embeddings and their norm) or, failing that, the word
    embeddings alone."""
    from torch import nn

    module = getattr(body, "embeddings", None)
    return module if isinstance(module, nn.Module) else body.get_input_embeddings()


def _run_in_eval_mode(module, args) -> None:
    module.eval()
