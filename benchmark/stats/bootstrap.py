"""The paired bootstrap over test examples: every cell's metric on the full test set and on each resample, drawn
once with the same resampled indices for every seed and method of a block (`Scores`), computed as weighted
column sums of a 0/1 feature matrix per metric (accuracy, macro-F1, F1 of the positive label), a chunk of
resamples at a time on one BLAS thread."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from benchmark.stats.difference import Difference

_WEIGHT_ENTRIES_PER_CHUNK = 4_000_000  # resample weights held at once (float32: 16 MB)
_DENSE_MAX_LABELS = 12  # above this a sparse product beats the dense one (measured on 2 cores, 70 cells)


@dataclass
class Scores:
    """Every cell's metric on the full test set (`point`) and on each bootstrap resample (`replicates`), with the
    cells' columns by (method, seed)."""

    point: np.ndarray
    replicates: np.ndarray
    column: dict[tuple[str, int], int]

    @classmethod
    def of(cls, y_true, runs: dict[str, dict[int, np.ndarray]], metric: str, num_labels: int, resamples: int, rng):
        cells = [(method, s) for method, by_seed in runs.items() for s in by_seed]
        preds = np.stack([np.asarray(runs[m][s]) for m, s in cells])
        point = _metric_from_weights(np.ones((1, len(y_true)), np.float32), y_true, preds, metric, num_labels)[0]
        replicates = _bootstrap_metric(y_true, preds, metric, num_labels, resamples, rng)
        return cls(point, replicates, {cell: i for i, cell in enumerate(cells)})

    def _columns(self, method: str, seeds: list[int]) -> list[int]:
        return [self.column[(method, s)] for s in seeds]

    def summary(self, method: str, seeds: list[int], alpha: float) -> tuple[float, float, int, float, float]:
        """(mean, std, n, ci_low, ci_high) of the method's seeds; every supported metric lies in [0, 1], and so
        does the interval for its expected value."""
        cols = self._columns(method, seeds)
        values = self.point[cols]
        low, high = Difference.of(values, self.replicates[:, cols]).interval(alpha, 0.0, 1.0)
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return float(values.mean()), std, len(values), low, high

    def difference(self, method: str, best: str, seeds: list[int]) -> Difference:
        """The method minus the best over `seeds`."""
        mine, theirs = self._columns(method, seeds), self._columns(best, seeds)
        return Difference.of(
            self.point[mine] - self.point[theirs], self.replicates[:, mine] - self.replicates[:, theirs]
        )


def _labels_scored(metric: str, num_labels: int) -> np.ndarray:
    return np.array([1]) if metric == "f1_positive" else np.arange(num_labels)


def _features(y_true: np.ndarray, preds: np.ndarray, metric: str, num_labels: int):
    """A 0/1 matrix (test examples x columns) whose weighted column sums give every cell's metric.

    accuracy: one column per cell (correct). F1: per cell and scored label l, TP_l (correct, y == l) and FP_l
    (wrong, pred == l), plus one shared support column per label; F1_l = 2 TP / (TP + FP + support).
    """
    import scipy.sparse as sparse

    n_cells, n = preds.shape
    if metric == "accuracy":
        return (preds == y_true).T.astype(np.float32)
    labels = _labels_scored(metric, num_labels)
    position = np.full(num_labels, -1)
    position[labels] = np.arange(len(labels))
    correct = preds == y_true
    slot = np.where(correct, position[y_true][None, :], position[preds])  # which label's TP / FP column
    offset = np.where(correct, 0, len(labels))
    column = np.arange(n_cells)[:, None] * 2 * len(labels) + offset + slot
    keep = slot >= 0
    support_column = n_cells * 2 * len(labels) + position[y_true]
    rows = np.concatenate([np.broadcast_to(np.arange(n), preds.shape)[keep], np.flatnonzero(position[y_true] >= 0)])
    cols = np.concatenate([column[keep], support_column[position[y_true] >= 0]])
    matrix = sparse.csc_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(n, (2 * n_cells + 1) * len(labels))
    )
    return matrix.toarray() if len(labels) <= _DENSE_MAX_LABELS else matrix


def _metric_from_counts(counts: np.ndarray, n_cells: int, n_labels: int, metric: str, total: float) -> np.ndarray:
    if metric == "accuracy":
        return counts / total
    per_cell = counts[:, : 2 * n_cells * n_labels].reshape(len(counts), n_cells, 2, n_labels)
    tp, fp = per_cell[:, :, 0, :], per_cell[:, :, 1, :]
    support = counts[:, None, 2 * n_cells * n_labels :]
    denominator = tp + fp + support
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)  # zero_division=0
    return f1.mean(axis=2)


def _metric_from_weights(weights, y_true, preds, metric, num_labels, features=None) -> np.ndarray:
    """The metric of every cell (columns) under every row of test-example weights (counts of a resample)."""
    if features is None:
        features = _features(y_true, preds, metric, num_labels)
    counts = np.asarray(weights @ features, dtype=np.float64)  # features may be a scipy sparse matrix
    n_labels = len(_labels_scored(metric, num_labels))
    return _metric_from_counts(counts, len(preds), n_labels, metric, float(len(y_true)))


@lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

    return ThreadpoolController()


def _bootstrap_metric(y_true, preds, metric, num_labels, resamples, rng) -> np.ndarray:
    """resamples x cells: each cell's metric on test sets resampled with replacement, the same for all cells."""
    n = len(y_true)
    features = _features(y_true, preds, metric, num_labels)
    chunk = max(1, min(resamples, _WEIGHT_ENTRIES_PER_CHUNK // n))
    out = np.empty((resamples, len(preds)))
    # These products are thin (few columns): on a shared 2-core machine one BLAS thread was 30x faster for
    # small ones and no slower for the largest, where drawing the resamples dominates anyway.
    with _blas_controller().limit(limits=1, user_api="blas"):
        for start in range(0, resamples, chunk):
            size = min(chunk, resamples - start)
            picks = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
            weights = np.bincount(picks.ravel(), minlength=size * n).reshape(size, n).astype(np.float32)
            out[start : start + size] = _metric_from_weights(weights, y_true, preds, metric, num_labels, features)
    return out
