"""The training job serves the best of its candidates (two towers, EASE, popularity), and what it
serves is scored from NumPy exactly as the candidate was; reasons never cite a disliked item."""

import numpy as np
import pytest

from tailor.recommend.scorer import Recommender, RecommenderArtifact
from tailor.recommend.service import FILLER_REASON, RecommendService, ServedModel
from tailor.sentiment.text import TokenizerConfig
from tailor.training.recommender.job import (
    Interactions,
    choose_served,
    disliked_pairs,
    ease_weights,
    serve_with,
    with_reason_history,
)

N_USERS, N_ITEMS, DIM = 30, 12, 3


def random_artifact(seed: int = 0) -> RecommenderArtifact:
    rng = np.random.default_rng(seed)
    seen = rng.random((N_USERS, N_ITEMS)) < 0.3
    seen[:, 0] = True  # every user has a history
    indptr = np.r_[0, np.cumsum(seen.sum(axis=1))]
    indices = np.concatenate([np.flatnonzero(row) for row in seen]).astype(np.int32)
    history = np.full((N_USERS, 4), -1, dtype=np.int32)
    for u, row in enumerate(seen):
        items = np.flatnonzero(row)[::-1][:4]
        history[u, :len(items)] = items
    arrays = {
        "user_ids": np.array([f"u{u}" for u in range(N_USERS)]), "item_ids": np.array([f"i{i}" for i in range(N_ITEMS)]),
        "user_embeddings": rng.normal(size=(N_USERS, DIM)).astype(np.float32),
        "history_embeddings": rng.normal(size=(N_ITEMS, DIM)).astype(np.float32),
        "position_weights": np.array([1.0, 0.8, 0.6, 0.4], np.float32), "user_history": history,
        "seen_indptr": indptr, "seen_indices": indices,
        "item_vectors": rng.normal(size=(N_ITEMS, DIM + 1)).astype(np.float32),
        "category_names": np.array(["shoes"]), "category_embeddings": np.zeros((1, DIM + 1), np.float32),
        "item_category_indptr": np.arange(N_ITEMS + 1), "item_category_indices": np.zeros(N_ITEMS, np.int32),
        "token_keys": np.array([1], np.uint64), "token_embeddings": np.zeros((1, DIM + 1), np.float32),
        "item_popularity": seen.sum(axis=0).astype(np.float32),
        "user_activity": seen.sum(axis=1).astype(np.float32), "user_log_normalizer": np.zeros(N_USERS, np.float32),
    }
    config = {"tokenizer": TokenizerConfig(word_ngrams=1, cjk_ngrams=2).to_dict(), "max_tokens": 8,
              "audience_rule": "score", "rating": None}
    return RecommenderArtifact(arrays, config), seen


def validation(tower: float, ease: float | None, popularity: float) -> dict:
    metric = lambda ndcg: {"ndcg": ndcg, "precision": ndcg, "recall": ndcg, "coverage": 0.5}
    return {"model": metric(tower), "popularity": metric(popularity), "ease": None if ease is None else metric(ease)}


def test_the_best_candidate_is_served_and_the_decision_names_the_comparison():
    served, scores, sentence = choose_served(validation(0.659, 0.785, 0.40), n_items=85)
    assert served == "ease" and scores == {"two_tower": 0.659, "ease": 0.785, "popularity": 0.40}
    assert sentence.startswith("EASE 0.785 beats the two-tower model 0.659 and popularity 0.400")
    assert sentence.endswith("serving EASE")
    assert choose_served(validation(0.30, 0.20, 0.10), 85)[0] == "two_tower"
    assert choose_served(validation(0.10, 0.12, 0.50), 85)[0] == "popularity"
    # A tie keeps the learned model; EASE over the serving size is a baseline only.
    assert choose_served(validation(0.30, 0.30, 0.10), 85)[0] == "two_tower"
    served, scores, sentence = choose_served(validation(0.20, 0.30, 0.10), n_items=50_000)
    assert served == "two_tower" and "ease" not in scores and "baseline only" in sentence


def test_an_ease_served_artifact_ranks_exactly_as_ease_computed_independently():
    artifact, seen = random_artifact()
    recommender = Recommender.from_files(serve_with(artifact, "ease", 30.0).to_files())
    x = seen.astype(np.float64)
    gram = x.T @ x + 30.0 * np.eye(N_ITEMS)
    precision = np.linalg.inv(gram)
    expected_weights = -precision / np.diag(precision)
    np.fill_diagonal(expected_weights, 0.0)
    np.testing.assert_allclose(ease_weights(x, 30.0), expected_weights, rtol=1e-9)
    scores = x @ expected_weights
    for u in range(N_USERS):
        ranked = recommender.recommend(f"u{u}", k=5)
        unseen = np.flatnonzero(~seen[u])
        expected = unseen[np.argsort(-scores[u, unseen], kind="stable")][:5]
        assert [item for item, _ in ranked] == [f"i{i}" for i in expected]
        np.testing.assert_allclose([s for _, s in ranked], scores[u, expected], rtol=1e-4, atol=1e-5)
    # A session is scored the same way from its items.
    session = recommender.from_recent_items(["i1", "i2"], k=3)
    session_scores = expected_weights[[1, 2]].sum(axis=0)
    session_scores[[1, 2]] = -np.inf
    assert [item for item, _ in session] == [f"i{i}" for i in np.argsort(-session_scores, kind="stable")[:3]]


def test_a_popularity_served_artifact_answers_the_most_popular_unseen_items():
    artifact, seen = random_artifact(1)
    recommender = Recommender.from_files(serve_with(artifact, "popularity", None).to_files())
    counts = seen.sum(axis=0)
    ranked = recommender.recommend("u3", k=3)
    unseen = np.flatnonzero(~seen[3])
    assert [s for _, s in ranked] == sorted(counts[unseen], reverse=True)[:3]


def test_reasons_never_cite_an_item_the_customer_rated_low_and_filler_cites_nothing():
    artifact, seen = random_artifact(2)
    user = "u0"
    history = [f"i{i}" for i in artifact.arrays["user_history"][0] if i >= 0]
    disliked = history[0]
    interactions = Interactions(np.array([user, user]), np.array([disliked, history[-1]]), np.array([1.0, 2.0]),
                                np.array([1.0, 5.0]))
    pairs = disliked_pairs(interactions, None)
    assert pairs == {(user, disliked)}
    recommender = Recommender(with_reason_history(artifact, pairs))
    catalog = {f"i{i}": {"title": f"Item {i}"} for i in range(N_ITEMS)}
    service = RecommendService(None)
    service._model = lambda version=None: (ServedModel(recommender, catalog), "v1")
    answer = service.for_user(user, k=N_ITEMS)
    reasons = [item["reason"] for item in answer["items"]]
    assert f"because you chose Item {disliked[1:]}" not in reasons
    floor = recommender.score_floor(user)
    for item in answer["items"]:
        if item["score"] <= floor:
            assert item["reason"] == FILLER_REASON
    assert any(r.startswith("because you chose") for r in reasons)
    # Fewer than k items: the answer says why.
    assert "only" in answer["note"] and f"of the {N_ITEMS} requested" in answer["note"]


@pytest.mark.parametrize("rating,label,disliked", [(1, None, True), ("2", None, True), (5, "negative", True),
                                                    (4, None, False), (None, "positive", False)])
def test_reviews_rated_low_or_negative_are_disliked(rating, label, disliked):
    import pyarrow as pa

    reviews = pa.table({"user_id": ["u"], "item_id": ["i"], "rating": [rating if rating is None else str(rating)],
                        "label": [label]})
    empty = Interactions(np.array([], dtype=str), np.array([], dtype=str), np.array([]))
    assert (("u", "i") in disliked_pairs(empty, reviews)) is disliked


def test_variants_with_the_same_customers_are_found_and_count_once():
    from tailor.recommend import evaluation

    rng = np.random.default_rng(3)
    x = (rng.random((40, 6)) < 0.3).astype(float)
    x[:, 1] = x[:, 0]  # listing 1 is a variant of listing 0: the same customers
    x[:5, 0] = x[:5, 1] = 1.0
    families = evaluation.near_duplicate_families(x)
    assert families[0] == families[1] and len(set(families.tolist())) == 5
    # A user who has listing 0 gets no credit for its variant 1, and one family fills one slot.
    of = np.array([0, 0, 1, 2, 3, 4])
    top = np.array([[1, 2, 3, 4, 5]])
    per_family = evaluation.family_metrics(top, [np.array([1])], np.array([0, 1]), np.array([0]), of, k=3)
    assert per_family["users"] == 0  # the only held-out item is a variant of what the user had
    per_family = evaluation.family_metrics(np.array([[0, 1, 2, 3]]), [np.array([1, 2])], np.array([0, 0]),
                                           np.array([], dtype=np.int64), of, k=2)
    assert per_family["precision"] == 1.0  # families 0 and 1 fill the two slots, both relevant
