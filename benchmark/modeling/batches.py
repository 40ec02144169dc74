"""Tokenisation once, without padding, and length-bucketed batches: dynamic padding to each batch's longest text for
training (shuffled, sorted within windows) and inference (sorted by length, returned in input order)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass
class Tokens:
    """Token ids of a list of texts, unpadded, truncated at the model's max length."""

    ids: list[list[int]]
    pad_id: int

    @classmethod
    def of(cls, tokenizer, texts: list[str], max_length: int) -> Tokens:
        ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
        return cls(ids, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(i) for i in self.ids), dtype=np.int64, count=len(self.ids))

    def batch(self, index: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
        """input_ids and attention_mask for `index`, padded to the longest member only."""
        import torch

        rows = [self.ids[i] for i in index]
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for row, ids in enumerate(rows):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        return input_ids.to(device), mask.to(device)


@dataclass
class Vectors:
    """Precomputed sentence vectors (a frozen body's pooled output) as training or inference inputs of a head.
    `lengths` are the texts' token counts, so length-bucketed batches are the very batches `Tokens` of the same
    texts would give."""

    vectors: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.vectors)

    def batch(self, index: np.ndarray, device) -> tuple[torch.Tensor]:
        import torch

        return (torch.from_numpy(self.vectors[index]).to(device),)


def train_batches(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    window: int = 50,
    shorter: np.ndarray | None = None,
    group: int = 4,
) -> list[np.ndarray]:
    """One epoch of length-bucketed batches: shuffle, sort within windows of `window` batches by length,
    cut into batches, shuffle the batch order. Batches hold similar lengths (little padding) while their order
    and membership stay random across epochs.

    For pairs whose two texts are embedded in two forwards (the longer texts of a batch together, the shorter
    together), `lengths` is the longer text's length and `shorter` the other's: each run of `group` batches
    of similar longer lengths is re-sorted by the shorter length before it is cut, so both forwards stay
    narrow."""
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * window):
        chunk = order[start : start + batch_size * window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        if shorter is not None:
            runs = [chunk[i : i + batch_size * group] for i in range(0, len(chunk), batch_size * group)]
            chunk = np.concatenate([run[np.argsort(shorter[run], kind="stable")] for run in runs])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def inference_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of similar length, longest first (so a memory problem shows at once)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
