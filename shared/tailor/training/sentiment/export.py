"""A trained Keras sentiment model → the :class:`SentimentArtifact` the NumPy scorer serves.

Serving (``tailor.sentiment``) loads only the artifact, never this package: it must run without
TensorFlow. The tower folds its weights per feature (:meth:`BagOfNgramsTower.export`); this adds
the vocabulary, classes, tokenizer settings and the serving threshold.
"""

from __future__ import annotations

from tailor.sentiment.scorer import SentimentArtifact
from tailor.training.sentiment.config import SentimentTrainingConfig
from tailor.training.sentiment.towers import SentimentModel


def export_artifact(model: SentimentModel, config: SentimentTrainingConfig, model_version: str = "unversioned",
                    metadata: dict | None = None) -> SentimentArtifact:
    """The artifact of ``model`` as it stands (its current NBSVM interpolation and head weight)."""
    return SentimentArtifact(
        vocabulary=model.feature_space.vocabulary,
        classes=model.classes,
        tokenizer=model.feature_space.tokenizer,
        neutral_threshold=config.neutral_threshold,
        model_version=model_version,
        metadata=metadata or {},
        **model.tower.export(),
    )
