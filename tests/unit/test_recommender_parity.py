"""The NumPy scorer (tailor.recommend.scorer) computes what the Keras models compute, and serving
never imports TensorFlow.

Trains tiny models on synthetic data for a couple of epochs (seconds), exports them through the
artifact files, and compares scores for the same users and items.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tailor.recommend.scorer import Recommender  # noqa: E402
from tailor.training.recommender.config import RatingConfig, RetrievalConfig
from tailor.training.recommender.data import Interactions, ItemCatalog
from tailor.training.recommender.train import train_recommender

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4


def synthetic(seed: int = 0):
    """40 users, 30 items in 3 genres (users prefer one genre), ratings, plus one item never seen."""
    rng = np.random.default_rng(seed)
    genres = ["Action", "Drama", "Kids"]
    item_genre = np.arange(30) % 3
    rows = []
    for user in range(40):
        liked = user % 3
        weights = np.where(item_genre == liked, 5.0, 1.0)
        items = rng.choice(30, size=rng.integers(6, 14), replace=False, p=weights / weights.sum())
        for step, item in enumerate(items):
            rating = 5 if item_genre[item] == liked else int(rng.integers(1, 4))
            rows.append((f"u{user}", f"i{item}", 1_600_000_000 + 60 * step, rating))
    users, items, times, ratings = map(np.array, zip(*rows))
    catalog = ItemCatalog(
        item_ids=[f"i{i}" for i in range(31)],
        titles=[f"{genres[i % 3]} story number {i}" for i in range(31)],
        categories=["|".join([genres[i % 3]] + (["Classic"] if i % 5 == 0 else [])) for i in range(31)],
        descriptions=[f"A {genres[i % 3].lower()} film" if i % 2 else None for i in range(31)],
    )
    return Interactions(users, items, times, ratings), catalog


@pytest.fixture(scope="module")
def trained():
    interactions, catalog = synthetic()
    # XLA compilation would dominate a run this small; the math is the same without it.
    retrieval = RetrievalConfig(embedding_dim=8, history_length=5, batch_size=32, max_epochs=2, patience=1,
                                token_min_items=1, jit_compile=False)
    rating = RatingConfig(factors=4, batch_size=64, max_epochs=2, patience=1, jit_compile=False)
    result = train_recommender(interactions, catalog, retrieval=retrieval, rating=rating, seed=1)
    scorer = Recommender.from_files(result.artifact.to_files())
    return result, scorer, catalog


def test_retrieval_scores_match_keras(trained):
    result, scorer, _ = trained
    arrays = result.artifact.arrays
    users = np.arange(len(arrays["user_ids"]), dtype=np.int32)
    keras_scores = result.retrieval_model.scores(users, arrays["user_history"])
    for row, user in enumerate(arrays["user_ids"]):
        numpy_scores = np.array([score for _, score in scorer.score_items(user, scorer.item_ids)])
        np.testing.assert_allclose(numpy_scores, keras_scores[row], atol=TOLERANCE, rtol=0)
    # The scores are not trivially equal (e.g. all zero): they rank items differently per user.
    assert np.ptp(keras_scores) > 0.01


def test_fold_in_matches_the_keras_user_tower_on_a_history_never_trained_on(trained):
    """Events after training: the NumPy fold-in pools them as the Keras user tower would."""
    result, scorer, _ = trained
    arrays = result.artifact.arrays
    row = scorer.user_row("u3")
    seen = set(scorer.seen_items("u3"))
    fresh = [item for item in scorer.item_ids[:30] if item not in seen][:5]  # newest first, history length 5
    assert len(fresh) == 5
    history = np.array([[scorer.item_row(item) for item in fresh]], dtype=np.int32)
    keras_vector = keras.ops.convert_to_numpy(result.retrieval_model.user_tower(np.array([row], np.int32), history))[0]
    folded = scorer.fold_in("u3", fresh)
    np.testing.assert_allclose(folded.vector, keras_vector, atol=TOLERANCE, rtol=0)
    keras_scores = result.retrieval_model.scores(np.array([row], np.int32), history)[0]
    np.testing.assert_allclose(scorer.folded_scores(folded), keras_scores, atol=TOLERANCE, rtol=0)
    assert not np.allclose(folded.vector, scorer.user_matrix[row], atol=1e-3)  # the events changed it
    # A customer the model never saw: the same pooled history, without a user embedding.
    stranger = scorer.fold_in("never-trained", fresh)
    own = np.append(arrays["user_embeddings"][row], 0.0)
    np.testing.assert_allclose(stranger.vector, keras_vector - own, atol=TOLERANCE, rtol=0)


def test_content_only_vectors_match_keras_item_tower(trained):
    result, scorer, catalog = trained
    keras_content = keras.ops.convert_to_numpy(result.retrieval_model.item_tower(None, content_only=True))
    for item, title, categories, description in zip(catalog.item_ids, catalog.titles, catalog.categories,
                                                    catalog.descriptions):
        vector = scorer.item_vector_from_content(title, categories, description)
        np.testing.assert_allclose(vector, keras_content[scorer.item_row(item)], atol=TOLERANCE, rtol=0)
    # The never-interacted item is served from its content alone, as a new item would be.
    np.testing.assert_allclose(scorer.item_matrix[scorer.item_row("i30")], keras_content[scorer.item_row("i30")],
                               atol=TOLERANCE, rtol=0)


def test_rating_predictions_match_keras(trained):
    result, scorer, _ = trained
    arrays = result.artifact.arrays
    rng = np.random.default_rng(0)
    users = rng.integers(0, len(arrays["user_ids"]), 200).astype(np.int32)
    items = rng.integers(0, 30, 200).astype(np.int32)
    keras_predictions = keras.ops.convert_to_numpy(result.rating_model({"user": users, "item": items}))
    low, high = result.artifact.config["rating"]["min"], result.artifact.config["rating"]["max"]
    numpy_predictions = scorer.predict_ratings(arrays["user_ids"][users], arrays["item_ids"][items])
    np.testing.assert_allclose(numpy_predictions, np.clip(keras_predictions, low, high), atol=TOLERANCE, rtol=0)
    assert np.ptp(numpy_predictions) > 0.1


def test_serving_does_not_import_tensorflow(trained, tmp_path):
    result, scorer, _ = trained
    result.artifact.save(tmp_path)
    expected = [item for item, _ in scorer.recommend("u3", k=5)]
    code = f"""
import json, sys
from tailor.recommend.scorer import Recommender
scorer = Recommender.load({str(tmp_path)!r})
top = [item for item, _ in scorer.recommend("u3", k=5)]
scorer.from_recent_items(["i1", "i4"], k=3)
scorer.similar_items("i2", k=3)
scorer.add_item("brand-new", "Kids story", "Kids")
scorer.predict_rating("u3", "i2")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print(json.dumps({{"top": top, "heavy": heavy}}))
"""
    env = {"PYTHONPATH": f"{ROOT / 'shared'}", "PATH": "/usr/bin:/bin"}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    answer = json.loads(output.stdout)
    assert answer["heavy"] == []
    assert answer["top"] == expected


def test_in_batch_softmax_with_logq_trains():
    """The sampled loss for big catalogs (in-batch negatives, logQ correction) learns too."""
    interactions, catalog = synthetic(seed=2)
    retrieval = RetrievalConfig(embedding_dim=8, history_length=5, batch_size=64, max_epochs=4, patience=4,
                                softmax="in_batch", jit_compile=False)
    result = train_recommender(interactions, catalog, retrieval=retrieval, rating=None, seed=3)
    losses = [epoch["loss"] for epoch in result.report["retrieval"]["history"]]
    assert result.report["retrieval"]["softmax"] == "in_batch"
    assert losses[-1] < losses[0]
    assert result.artifact.config["rating"] is None


def test_report_has_validation_metrics(trained):
    result, _, _ = trained
    validation = result.report["validation"]
    assert validation["model"]["users"] > 0 and 0.0 <= validation["model"]["ndcg"] <= 1.0
    assert result.report["rating"]["validation"]["rmse"] > 0
    assert result.artifact.config["audience_rule"] in ("score", "activity")
