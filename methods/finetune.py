"""The fine-tuning recipe shared by the gradient methods (`full`, `freeze`, `lora`, `mlm`): a helper of the methods,
not a method (it registers nothing).

A subclass changes one step: which body it starts from (`load_body`) or which weights train (`prepare`).
Everything else (tokenisation, pooling, head, optimiser, budget rule, inference) is identical, so the table
compares methods, not plumbing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
from annotated_types import Ge, Gt, Lt

from benchmark import modeling
from benchmark.record import FitResult


@dataclass
class FineTune:
    """Fine-tune the encoder and a new linear head on the encoder's own sentence pooling."""

    lr: Annotated[float, Gt(0)] = 5e-5  # AdamW peak rate; BERT-family fine-tuning uses 2e-5..5e-5, small models the top
    batch_size: Annotated[int, Ge(1)] = 16  # the SetFit paper's batch size for its fine-tuning baselines
    min_steps: Annotated[int, Ge(0)] = 100  # budget rule: at least this many optimizer steps ...
    min_epochs: Annotated[int, Ge(1)] = 1  # ... and at least this many epochs (the whole pool: 1, Hands-On LLMs ch. 11)
    max_epochs: Annotated[int, Ge(1)] = 50  # ... but never more epochs than this (8 per class, 2 classes: 50 steps)
    weight_decay: Annotated[float, Ge(0)] = 0.01  # as in BERT and the Trainer recipe
    warmup_ratio: Annotated[float, Ge(0), Lt(1)] = 0.1
    dropout: Annotated[float, Ge(0), Lt(1)] = 0.1  # on the pooled vector, as BERT's classification head

    def check(self, model: modeling.ModelSpec) -> None:
        if self.min_epochs > self.max_epochs:
            raise ValueError(f"min_epochs={self.min_epochs} is more than max_epochs={self.max_epochs}")

    def load_body(self, ctx):
        return modeling.load_body(ctx.model)

    def prepare(self, model, ctx) -> None:
        """Decide which parameters train; the base recipe trains all of them."""

    def schedule(self) -> modeling.Schedule:
        return modeling.Schedule(self.batch_size, self.min_steps, self.min_epochs, self.max_epochs)

    def optimization(self, lr: float | None = None) -> modeling.Optimization:
        return modeling.Optimization(self.lr if lr is None else lr, self.weight_decay, self.warmup_ratio)

    def fit(self, train, ctx) -> FitResult:
        self._ctx = ctx
        self._tokenizer = modeling.load_tokenizer(ctx.model)
        self._model = modeling.build_classifier(self.load_body(ctx), ctx.model.pooling, ctx.num_labels, self.dropout)
        self.prepare(self._model, ctx)
        tokens = modeling.Tokens.of(self._tokenizer, train.texts, ctx.model.max_length)
        resolved = modeling.fine_tune(
            self._model, tokens, train.labels, self.schedule(), self.optimization(), ctx.placement, ctx.seed
        )
        trainable, total = modeling.count_params(self._model)
        return FitResult(trainable, total, resolved)

    def predict(self, texts: list[str]) -> np.ndarray:
        tokens = modeling.Tokens.of(self._tokenizer, texts, self._ctx.model.max_length)
        return modeling.predict_logits(self._model, tokens, self._ctx.placement).argmax(-1)
