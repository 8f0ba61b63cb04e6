"""Validation metrics of sentiment class probabilities: accuracy, balanced accuracy, macro-F1
and calibration (ECE with its reliability table).

Plain NumPy on probabilities, so the same numbers describe the Keras model, the exported
artifact and the model currently served.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def evaluation_metrics(y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str], bins: int = 10) -> dict:
    """Accuracy, macro-F1, per-class counts and calibration (ECE + reliability table)."""
    y_true = np.asarray(y_true)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    correct = predicted == y_true
    per_class = {}
    f1s = []
    for c, name in enumerate(classes):
        tp = int(np.sum((predicted == c) & (y_true == c)))
        fp = int(np.sum((predicted == c) & (y_true != c)))
        fn = int(np.sum((predicted != c) & (y_true == c)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        per_class[name] = {"support": int(np.sum(y_true == c)), "predicted": int(np.sum(predicted == c)),
                           "precision": precision, "recall": recall, "f1": f1}
    table = []
    ece = 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i in range(bins):
        low, high = edges[i], edges[i + 1]
        members = (confidence > low) & (confidence <= high) if i else (confidence >= low) & (confidence <= high)
        count = int(members.sum())
        accuracy: float | None = None
        mean_confidence: float | None = None
        if count:
            accuracy, mean_confidence = float(correct[members].mean()), float(confidence[members].mean())
            ece += count / len(y_true) * abs(accuracy - mean_confidence)
        table.append({"low": float(low), "high": float(high), "count": count,
                      "accuracy": accuracy, "mean_confidence": mean_confidence})
    present = [per_class[name]["recall"] for name in classes if per_class[name]["support"]]
    return {
        "accuracy": float(correct.mean()) if len(y_true) else 0.0,
        # Mean recall over the classes present: always answering the majority class scores 1 / n.
        "balanced_accuracy": float(np.mean(present)) if present else 0.0,
        "macro_f1": float(np.mean(f1s)),
        "per_class": per_class,
        "calibration": {"expected_calibration_error": float(ece), "bins": table},
    }
