"""The NumPy sentiment scorer (tailor.sentiment.scorer) computes what the Keras model computes, and
serving never imports TensorFlow.

Trains tiny models on a synthetic English + Chinese corpus for a few epochs (seconds),
exports them through the artifact files, and compares probabilities on the same texts.
"""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tailor.sentiment.scorer import SentimentArtifact, SentimentScorer  # noqa: E402
from tailor.training.sentiment.config import SentimentTrainingConfig
from tailor.training.sentiment.fit import train_sentiment
from tailor.training.sentiment.labels import labels_from_ratings
from tailor.training.sentiment.towers import keras_probabilities

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5
POSITIVE = ["great", "wonderful", "love", "excellent", "好", "棒", "喜欢", "😍"]
NEGATIVE = ["awful", "terrible", "hate", "boring", "差", "糟糕", "失望", "😡"]
NEUTRAL = ["okay", "average", "一般", "还行"]
FILLER = ["the", "room", "movie", "staff", "was", "and", "房间", "服务", "酒店", "really", "very", "很", "!"]


def corpus(n: int, classes: tuple[str, ...], seed: int = 0) -> tuple[list[str], list[str]]:
    """Short reviews: a few filler words around one or two words of the label's sentiment."""
    rng = np.random.default_rng(seed)
    words = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}
    texts, labels = [], []
    for i in range(n):
        label = classes[i % len(classes)]
        chosen = list(rng.choice(FILLER, size=rng.integers(2, 7))) + list(rng.choice(words[label], size=rng.integers(1, 3)))
        if rng.random() < 0.1:  # some noise: a word of another class
            chosen.append(rng.choice(words[classes[(i + 1) % len(classes)]]))
        rng.shuffle(chosen)
        texts.append(" ".join(chosen))
        labels.append(label)
    return texts, labels


PROBES = [
    "great room, love it", "terrible staff and boring movie", "房间很好，服务棒", "酒店很差，失望",
    "okay", "", "   ", "完全没见过的词", "great 但是 差", "😍😍", "hate hate hate hate", "an unknown sentence here",
]
FAST = SentimentTrainingConfig(max_epochs=4, patience=1, batch_size=32)


@pytest.fixture(scope="module")
def binary():
    texts, labels = corpus(400, ("positive", "negative"))
    messages: list[str] = []
    return train_sentiment(texts, labels, seed=3, progress=messages.append, config=FAST), messages


@pytest.fixture(scope="module")
def three_class():
    texts, labels = corpus(600, ("positive", "negative", "neutral"), seed=1)
    return train_sentiment(texts, labels, seed=0, config=replace(FAST, refit=False, neutral_min_count=50))


def test_numpy_scorer_equals_keras_predict(binary, three_class):
    for result in (binary[0], three_class):
        scorer = SentimentScorer.from_files(result.artifact.to_files())  # through the stored bytes
        numpy_probabilities = scorer.probabilities(PROBES)
        keras_probs = keras_probabilities(result.model, PROBES)
        assert numpy_probabilities.shape == keras_probs.shape == (len(PROBES), len(result.artifact.classes))
        assert np.abs(numpy_probabilities - keras_probs).max() <= TOLERANCE
        np.testing.assert_allclose(numpy_probabilities.sum(axis=1), 1.0, atol=1e-9)


def test_trained_model_learns_the_synthetic_signal(binary, three_class):
    result, _ = binary
    assert result.artifact.classes == ("negative", "positive")
    assert result.metrics["accuracy"] >= 0.8  # 10% of the synthetic reviews carry a contrary word
    labels = [r["label"] for r in SentimentScorer(result.artifact).score(
        ["great wonderful, love it", "awful terrible hate", "房间很好，喜欢", "服务很差，糟糕"])]
    assert labels == ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE"]
    assert three_class.artifact.classes == ("negative", "neutral", "positive")
    assert SentimentScorer(three_class.artifact).score(["okay average 一般"])[0]["label"] == "NEUTRAL"


def test_metrics_report_accuracy_f1_counts_and_calibration(binary):
    result, messages = binary
    metrics = result.metrics
    assert 0.0 <= metrics["macro_f1"] <= 1.0
    assert metrics["label_counts"] == {"negative": 200, "neutral": 0, "positive": 200}
    assert metrics["train_examples"] + metrics["validation_examples"] == 400
    calibration = metrics["calibration"]
    assert len(calibration["bins"]) == 10
    assert sum(b["count"] for b in calibration["bins"]) == metrics["validation_examples"]
    assert 0.0 <= calibration["expected_calibration_error"] <= 1.0
    assert set(metrics["per_class"]) == {"negative", "positive"}
    assert metrics["refit_on_all_data"] is True
    json.dumps(metrics)  # the training job stores it as JSON
    # One progress line per epoch, for the validation run and the refit.
    assert any(m.startswith("fit epoch 1/4: loss") and "val_accuracy" in m for m in messages)
    assert any(m.startswith("refit epoch 1/") for m in messages)


def test_few_neutral_examples_give_a_two_class_model():
    texts, labels = corpus(300, ("positive", "negative"), seed=2)
    texts += ["okay", "average stay"] * 5 + ["", "  "]
    labels += ["neutral"] * 10 + ["positive", None]
    result = train_sentiment(texts, labels, config=replace(FAST, refit=False, max_epochs=1))
    assert result.artifact.classes == ("negative", "positive")
    assert result.metrics["skipped_neutral"] == 10
    assert result.metrics["skipped_blank"] == 1 and result.metrics["skipped_unlabelled"] == 1


def test_bad_training_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        train_sentiment(["a", "b"], ["positive"])
    with pytest.raises(ValueError, match="no negative examples"):
        train_sentiment(["good"] * 10, ["positive"] * 10)
    with pytest.raises(ValueError, match=r"label at position 1 is 'pos'"):
        train_sentiment(["good", "bad"], ["positive", "pos"])
    with pytest.raises(ValueError, match="text at position 0 is NoneType"):
        train_sentiment([None, "bad"], ["positive", "negative"])


def test_labels_from_ratings():
    assert labels_from_ratings([5, 4, 4.5, 3, 3.5, 2.5, 2, 1, None, float("nan")]) == [
        "positive", "positive", "positive", "neutral", "neutral", "neutral", "negative", "negative", None, None,
    ]
    with pytest.raises(ValueError, match="position 1 is 6"):
        labels_from_ratings([5, 6])
    with pytest.raises(ValueError, match="position 0 is '5'"):
        labels_from_ratings(["5"])


def test_serving_never_imports_tensorflow(binary, tmp_path):
    binary[0].artifact.save(tmp_path)
    script = (
        "import sys\n"
        "from tailor.sentiment.scorer import SentimentScorer\n"
        f"scorer = SentimentScorer.load({str(tmp_path)!r})\n"
        "results = scorer.score(['great room', '很差', ''])\n"
        "assert [r['label'] for r in results][2] == 'NEUTRAL'\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
        "print(','.join(loaded) or 'none')\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                               cwd=ROOT, env={"PYTHONPATH": str(ROOT / "shared"), "PATH": "/usr/bin:/bin"})
    assert completed.stdout.strip() == "none"


def test_artifact_files_reload_to_the_same_scores(binary, tmp_path):
    artifact = binary[0].artifact
    artifact.save(tmp_path)
    reloaded = SentimentArtifact.load(tmp_path)
    np.testing.assert_array_equal(SentimentScorer(reloaded).probabilities(PROBES),
                                  SentimentScorer(artifact).probabilities(PROBES))
