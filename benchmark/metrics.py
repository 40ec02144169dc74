"""Per-cell metrics, computed with scikit-learn (``evaluate.load`` fetches code from the Hub and fails offline), and
`METRICS`, the one list of their names: the command line's choices, the statistics' supported metrics, the report
columns. Importing it imports nothing heavy (scikit-learn only when a cell is scored), so the flags can use it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

METRICS = ("accuracy", "macro_f1", "f1_positive")


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_labels: int) -> dict[str, float]:
    """accuracy and macro-F1 over all labels of the task; for binary tasks also the F1 of label 1."""
    from sklearn.metrics import accuracy_score, f1_score  # here: importing scikit-learn takes seconds

    labels = list(range(num_labels))
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
    }
    if num_labels == 2:
        metrics["f1_positive"] = float(f1_score(y_true, y_pred, pos_label=1, average="binary", zero_division=0))
    return metrics
