import numpy as np
import pytest

from benchmark.metrics import classification_metrics


def test_binary_metrics_include_positive_class_f1():
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    metrics = classification_metrics(y_true, y_pred, 2)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["f1_positive"] == pytest.approx(0.8)
    assert metrics["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)


def test_multiclass_macro_f1_counts_a_never_predicted_class_as_zero():
    y_true, y_pred = np.array([0, 1, 2]), np.array([0, 1, 1])
    metrics = classification_metrics(y_true, y_pred, 3)
    assert "f1_positive" not in metrics
    assert metrics["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
