"""Inference in length-sorted batches, returned in input order: logits of a classifier, sentence vectors of a body."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from benchmark import progress
from benchmark.modeling.batches import Tokens, inference_batches
from benchmark.modeling.modules import pool
from benchmark.modeling.spec import Pooling
from benchmark.modeling.training import Placement

if TYPE_CHECKING:
    pass


def predict_logits(model, inputs, placement: Placement, batch_size: int = 64) -> np.ndarray:
    """Logits in input order, computed in length-sorted batches."""
    return _batched_inference(lambda *batch: model(*batch), model, inputs, placement, batch_size)


def embed(body, tokens: Tokens, placement: Placement, pooling: Pooling, normalize: bool, batch_size: int = 64):
    """Sentence vectors of the frozen body (the sentence-transformers recipe: pool, then optionally normalise)."""
    import torch

    def forward(ids, mask):
        vectors = pool(body(input_ids=ids, attention_mask=mask).last_hidden_state, mask, pooling)
        return torch.nn.functional.normalize(vectors.float(), dim=-1) if normalize else vectors

    return _batched_inference(forward, body, tokens, placement, batch_size)


def _batched_inference(forward, module, inputs, placement: Placement, batch_size: int) -> np.ndarray:
    import torch

    module.to(placement.device).eval()
    out: np.ndarray | None = None
    done = 0
    with torch.inference_mode():
        for index in inference_batches(inputs.lengths, batch_size):
            done += len(index)
            progress.report("texts encoded", done, len(inputs))
            with placement.autocast():
                values = forward(*inputs.batch(index, placement.device)).float().cpu().numpy()
            if out is None:
                out = np.empty((len(inputs), values.shape[1]), dtype=np.float32)
            out[index] = values
    return out
