"""What the harness hands a method's `fit`: the model, the task's shape, the cell's seed and device, the
unlabelled pool, and the one-off work it may share with the method's other cells (frozen features of every
text of the task; `one_off` for anything else, such as an adapted encoder)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from benchmark.grid.cache import OneOffCache, Use
from benchmark.modeling import ModelSpec, Placement, Tokens, embed, load_body, load_tokenizer

T = TypeVar("T")


@dataclass
class Context:
    model: ModelSpec
    num_labels: int
    seed: int
    device: str = "cpu"
    precision: str = "fp32"  # "fp32" or "bf16" (autocast)
    unlabelled: list[str] = field(default_factory=list)  # every text of the train pool, labels withheld
    features: FeatureStore | None = None
    cache: OneOffCache = field(default_factory=lambda: OneOffCache(None))
    uses: list[Use] = field(default_factory=list)  # one-off artifacts this cell used, for its record

    @property
    def placement(self) -> Placement:
        return Placement(self.device, self.precision)

    def one_off(
        self, kind: str, key: str, build: Callable[[], T], save: Callable[[T, Path], None], load: Callable[[Path], T]
    ) -> T:
        """Work every cell of a configuration reuses: built once (the harness times it), then loaded from memory
        or the cache folder. `key` must identify everything the artifact depends on."""
        value, use = self.cache.get(kind, key, build, save, load)
        self.uses.append(use)
        return value

    def frozen_features(self, texts: list[str], normalize: bool | None = None) -> np.ndarray:
        """Sentence vectors of the frozen encoder in eval mode, pooled as the body pools, in input order.

        `normalize` defaults to the body's own pipeline (sentence-transformers' Normalize, as ``encode``
        returns); pass False for the raw pooled vector that a classification head reads."""
        if self.features is None:
            self.features = FeatureStore(self.model, self.device, self.precision, [], "")
        vectors = self.features.lookup(texts, self)
        if self.model.normalize if normalize is None else normalize:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


class FeatureStore:
    """Pooled (unnormalised) frozen-encoder features of a fixed list of texts (train pool + test split), built
    in one bucketed pass as one-off work on first use and shared by every cell. Texts outside the list are
    encoded on demand and kept for the process."""

    def __init__(self, model: ModelSpec, device: str, precision: str, texts: list[str], dataset_key: str) -> None:
        self.model, self.device, self.precision = model, device, precision
        self.texts = list(dict.fromkeys(texts))
        self.key = hashlib.sha256(
            f"{model.fingerprint}|{model.pooling}|{model.max_length}|{precision}|{dataset_key}".encode()
        ).hexdigest()[:20]
        self._rows: dict[str, int] | None = None
        self._matrix: np.ndarray | None = None

    def lookup(self, texts: list[str], ctx: Context) -> np.ndarray:
        if self._rows is None:
            self._matrix = ctx.one_off(
                "features",
                self.key,
                lambda: self._encode(self.texts),
                lambda matrix, folder: np.save(folder / "features.npy", matrix, allow_pickle=False),
                lambda folder: np.load(folder / "features.npy", allow_pickle=False),
            )
            self._rows = {text: i for i, text in enumerate(self.texts)}
            self._use = ctx.uses[-1]
        else:  # the cell used the pass all the same: its record reports the cost
            ctx.uses.append(dataclasses.replace(self._use, seconds_here=0.0))
        missing = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if missing:
            start = len(self._rows)
            encoded = self._encode(missing)
            self._matrix = np.concatenate([self._matrix, encoded]) if start else encoded
            self._rows.update({t: start + i for i, t in enumerate(missing)})
        return self._matrix[[self._rows[t] for t in texts]]

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        tokenizer, body = load_tokenizer(self.model), load_body(self.model)
        tokens = Tokens.of(tokenizer, texts, self.model.max_length)
        return embed(body, tokens, Placement(self.device, self.precision), self.model.pooling, normalize=False)
