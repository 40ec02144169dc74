"""What the harness hands a method's `fit`: the model, the task's shape, the cell's seed and device, and
shared work (frozen features of every text of the task, computed once and kept on disk)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.modeling import ModelSpec, Tokens, embed, load_body, load_tokenizer


@dataclass
class Context:
    model: ModelSpec
    num_labels: int
    seed: int
    device: str = "cpu"
    precision: str = "fp32"  # "fp32" or "bf16" (autocast)
    unlabelled: list[str] = field(default_factory=list)  # every text of the train pool, labels withheld
    features: FeatureStore | None = None
    cache_dir: Path | None = None  # None: --no-cache

    def frozen_features(self, texts: list[str], normalize: bool | None = None) -> np.ndarray:
        """Sentence vectors of the frozen encoder in eval mode, pooled as the body pools, in input order.

        `normalize` defaults to the body's own pipeline (sentence-transformers' Normalize, as ``encode``
        returns); pass False for the raw pooled vector that a classification head reads."""
        if self.features is None:
            self.features = FeatureStore(self.model, self.device, self.precision, [], "", None)
        vectors = self.features.lookup(texts)
        if self.model.normalize if normalize is None else normalize:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


class FeatureStore:
    """Pooled (unnormalised) frozen-encoder features of a fixed list of texts (train pool + test split),
    computed in one bucketed pass on first use, reused by every cell of the process, and saved as .npy under a
    content key so a later run (or a parallel worker) loads them instead of recomputing. A .json beside it,
    written last (an entry without it is incomplete and computed again), keeps what that pass took
    (`compute_seconds`), so a run that loads the features still reports their cost. Texts outside the list are
    encoded on demand."""

    def __init__(
        self, model: ModelSpec, device: str, precision: str, texts: list[str], dataset_key: str, cache_dir: Path | None
    ) -> None:
        self.model, self.device, self.precision = model, device, precision
        self.texts = list(dict.fromkeys(texts))
        self.key = hashlib.sha256(
            f"{model.fingerprint}|{model.pooling}|{model.max_length}|{precision}|{dataset_key}".encode()
        ).hexdigest()[:20]
        self.path = cache_dir / "features" / f"{self.key}.npy" if cache_dir and dataset_key else None
        self._rows: dict[str, int] | None = None
        self._matrix: np.ndarray | None = None
        self.seconds = 0.0  # time spent loading or computing: shared work, not any one cell's
        self.compute_seconds: float | None = None  # what the pass over `texts` took, here or in the run that cached it
        self.lookups = 0  # calls of `lookup`: a cell that made one used the features

    def lookup(self, texts: list[str]) -> np.ndarray:
        self.lookups += 1
        if self._rows is None:
            started = time.perf_counter()
            self._matrix = self._load_or_compute()
            self._rows = {text: i for i, text in enumerate(self.texts)}
            self.seconds += time.perf_counter() - started
        missing = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if missing:
            start = len(self._rows)
            self._matrix = np.concatenate([self._matrix, self._encode(missing)]) if start else self._encode(missing)
            self._rows.update({t: start + i for i, t in enumerate(missing)})
        return self._matrix[[self._rows[t] for t in texts]]

    def _load_or_compute(self) -> np.ndarray:
        if self.path is None:
            return self._compute()
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        facts = self.path.with_suffix(".json")
        with FileLock(str(self.path) + ".lock"):  # parallel workers: one computes, the others load its result
            if self.path.is_file() and facts.is_file():
                matrix = np.load(self.path, allow_pickle=False)
                if len(matrix) == len(self.texts):
                    self.compute_seconds = json.loads(facts.read_text())["compute_seconds"]
                    return matrix
            matrix = self._compute()
            with tempfile.NamedTemporaryFile(dir=self.path.parent, suffix=".npy", delete=False) as tmp:
                np.save(tmp, matrix, allow_pickle=False)
            os.replace(tmp.name, self.path)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, suffix=".json", delete=False) as tmp:
                json.dump({"compute_seconds": self.compute_seconds, "texts": len(self.texts)}, tmp)
            os.replace(tmp.name, facts)
        return matrix

    def _compute(self) -> np.ndarray:
        started = time.perf_counter()
        matrix = self._encode(self.texts)
        self.compute_seconds = time.perf_counter() - started
        return matrix

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        tokenizer, body = load_tokenizer(self.model), load_body(self.model)
        tokens = Tokens.of(tokenizer, texts, self.model.max_length)
        ctx = Context(self.model, 0, 0, self.device, self.precision)
        return embed(body, tokens, ctx, self.model.pooling, normalize=False)
