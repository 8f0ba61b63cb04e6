"""The one training loop (Keras ``fit``) with per-epoch evaluation of the exported model and
early stopping on its metric."""

from __future__ import annotations

import time
from collections.abc import Callable

import keras
import numpy as np

Progress = Callable[[str], None]


class EpochEvaluator(keras.callbacks.Callback):
    """Scores the served (exported) model after each epoch; stops after ``patience`` epochs
    without improvement and restores the best weights."""

    def __init__(self, evaluate: Callable[[], dict] | None, metric: str | None, higher_is_better: bool,
                 patience: int, progress: Progress | None, stage: str, epochs: int):
        super().__init__()
        self.evaluate, self.metric, self.higher_is_better = evaluate, metric, higher_is_better
        self.patience, self.progress, self.stage, self.epochs = patience, progress, stage, epochs
        self.history: list[dict] = []
        self.best_epoch, self.best_value = 0, None
        self._best_weights: list[np.ndarray] | None = None
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1, "loss": float((logs or {}).get("loss", float("nan")))}
        if self.evaluate is not None:
            entry.update(self.evaluate())
            assert self.metric is not None, "an evaluator needs the metric it watches"
            value = entry[self.metric]
            better = self.best_value is None or (value > self.best_value if self.higher_is_better
                                                 else value < self.best_value)
            if better:
                self.best_epoch, self.best_value = epoch + 1, value
                self._best_weights = [np.array(w) for w in self.model.get_weights()]
            elif epoch + 1 - self.best_epoch >= self.patience:
                self.model.stop_training = True
        else:
            self.best_epoch = epoch + 1
        entry["seconds"] = round(time.monotonic() - self._started, 1)
        self.history.append(entry)
        if self.progress:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in entry.items() if k not in ("epoch", "seconds")
                              and isinstance(v, float))
            self.progress(f"{self.stage} epoch {epoch + 1}/{self.epochs}: {shown} ({entry['seconds']} s)")

    def on_train_end(self, logs=None):
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)


def fit_model(model: keras.Model, x: dict, y: np.ndarray, *, batch_size: int, epochs: int,
         evaluate: Callable[[], dict] | None = None, metric: str | None = None, higher_is_better: bool = True,
         patience: int = 1, progress: Progress | None = None, stage: str = "train") -> EpochEvaluator:
    """The one training loop: Keras ``fit``; with ``evaluate``, early stopping on its ``metric``."""
    evaluator = EpochEvaluator(evaluate, metric, higher_is_better, patience, progress, stage, epochs)
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, callbacks=[evaluator], verbose=0)
    return evaluator
