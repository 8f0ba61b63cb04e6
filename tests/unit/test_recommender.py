"""The NumPy recommender scorer on a hand-made artifact whose scores can be worked out by hand."""

import numpy as np
import pytest

from tailor.core.errors import NotFound, Unavailable
from tailor.recommend.scorer import Recommender, RecommenderArtifact, text_token_keys
from tailor.sentiment.text import TokenizerConfig

TOKENIZER = TokenizerConfig(word_ngrams=1, cjk_ngrams=2)
SPACE_KEY = text_token_keys(["space"], TOKENIZER)[0][0]


def artifact(rating: bool = True, audience_rule: str = "score") -> RecommenderArtifact:
    """Users alice (history: a) and bob (no history); items a, b, c, d; dim 2 (+ bias)."""
    arrays = {
        "user_ids": np.array(["alice", "bob"]),
        "item_ids": np.array(["a", "b", "c", "d"]),
        "user_embeddings": np.array([[0.0, 0.0], [0.0, 1.0]], np.float32),
        "history_embeddings": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]], np.float32),
        "position_weights": np.array([1.0, 0.5], np.float32),
        "user_history": np.array([[0, -1], [-1, -1]], np.int32),
        "seen_indptr": np.array([0, 1, 2]), "seen_indices": np.array([0, 2], np.int32),
        # alice = [1, 0, 1] scores a 1, b 1.4, c 0, d -0.5; bob = [0, 1, 1] scores a 0, b 0.6, c 1, d -0.5
        "item_vectors": np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.5], [0.0, 1.0, 0.0], [0.5, 0.5, -1.0]], np.float32),
        "category_names": np.array(["drama", "kids"]),
        "category_embeddings": np.array([[1.0, 0.0, 0.1], [0.0, 1.0, 0.2]], np.float32),
        "item_category_indptr": np.array([0, 1, 2, 3, 3]), "item_category_indices": np.array([0, 0, 1], np.int32),
        "token_keys": np.array([SPACE_KEY], np.uint64),
        "token_embeddings": np.array([[0.0, 2.0, 0.3]], np.float32),
        "item_popularity": np.array([5, 1, 9, 2], np.float32),
        "user_activity": np.array([1, 1], np.float32),
        "user_log_normalizer": np.array([0.0, 3.0], np.float32),
    }
    config = {"tokenizer": TOKENIZER.to_dict(), "max_tokens": 8, "audience_rule": audience_rule, "rating": None}
    if rating:
        arrays.update({
            "rating_user_factors": np.array([[1.0], [0.0]], np.float32),
            "rating_item_factors": np.array([[2.0], [0.5], [0.0], [-9.0]], np.float32),
            "rating_user_bias": np.array([0.5, -0.5], np.float32),
            "rating_item_bias": np.array([0.0, 0.25, 0.0, 0.0], np.float32),
        })
        config["rating"] = {"global_mean": 3.0, "min": 1.0, "max": 5.0}
    return RecommenderArtifact(arrays, config)


@pytest.fixture
def scorer():
    return Recommender.from_files(artifact().to_files())


def test_recommend_ranks_unseen_items_by_score(scorer):
    assert scorer.recommend("alice", k=2) == [("b", pytest.approx(1.4)), ("c", pytest.approx(0.0))]
    assert [item for item, _ in scorer.recommend("bob", k=10)] == ["b", "a", "d"]
    assert [item for item, _ in scorer.recommend("alice", k=2, exclude_seen=False)] == ["b", "a"]


def test_recommend_filters(scorer):
    assert [i for i, _ in scorer.recommend("alice", k=3, exclude=["b", "unknown"])] == ["c", "d"]
    assert [i for i, _ in scorer.recommend("alice", k=3, allowed_items=["d", "c", "zzz"])] == ["c", "d"]
    assert [i for i, _ in scorer.recommend("alice", k=3, categories=["DRAMA"])] == ["b"]  # a is seen
    assert [i for i, _ in scorer.recommend("bob", k=3, categories="kids|Drama")] == ["b", "a"]  # c is seen
    assert scorer.recommend("alice", k=3, categories=["no such"]) == []


def test_unknown_ids_raise_not_found(scorer):
    with pytest.raises(NotFound):
        scorer.recommend("carol")
    with pytest.raises(NotFound) as error:
        scorer.score_items("alice", ["a", "nope"])
    assert error.value.details == {"unknown_items": ["nope"]}
    with pytest.raises(NotFound):
        scorer.similar_items("nope")
    with pytest.raises(ValueError):
        scorer.recommend("alice", k=0)


def test_score_items_keeps_input_order(scorer):
    assert scorer.score_items("bob", ["c", "a"]) == [("c", pytest.approx(1.0)), ("a", pytest.approx(0.0))]


def test_anonymous_session_pools_known_recent_items(scorer):
    # newest first: c (weight 1) then a (weight 0.5): pooled = (h_c + 0.5 h_a) / 1.5 = [1, 2/3]
    ranked = scorer.from_recent_items(["a", "c", "unknown"], k=4)
    assert [item for item, _ in ranked] == ["b", "d"]  # the session's own items are excluded
    assert ranked[0][1] == pytest.approx(0.9 + 0.1 * 2 / 3 + 0.5)
    with pytest.raises(NotFound):
        scorer.from_recent_items(["unknown"])


def test_similar_items_use_cosine_without_the_bias(scorer):
    ranked = scorer.similar_items("a", k=3)
    assert [item for item, _ in ranked] == ["b", "d", "c"]
    assert ranked[0][1] == pytest.approx(0.9 / np.hypot(0.9, 0.1))


def test_content_vector_and_new_item(scorer):
    vector = scorer.item_vector_from_content("Space!", "Drama|Unknown genre")
    np.testing.assert_allclose(vector, [1.0, 2.0, 0.4])  # drama category + "space" token
    np.testing.assert_allclose(scorer.item_vector_from_content("nothing known", None), [0, 0, 0])
    scorer.add_item("e", "space", ["kids"])
    assert scorer.similar_items("e", k=1)[0][0] == "c"  # [0, 3] points the same way as c's [0, 1]
    assert "e" in [item for item, _ in scorer.recommend("bob", k=5)]
    assert [item for item, _ in scorer.recommend("bob", k=5, categories=["kids"])] == ["e"]
    with pytest.raises(ValueError):
        scorer.add_item("a", "again", None)


def test_audience_excludes_users_who_saw_the_item():
    scorer = Recommender(artifact())
    assert [user for user, _ in scorer.audience("c", k=5)] == ["alice"]  # bob saw c
    assert [user for user, _ in scorer.audience("b", k=5)] == ["alice", "bob"]  # 1.4 > 0.6
    # "activity": score - log normalizer + log(1 + activity), i.e. log P(item | user) + log activity.
    activity = Recommender(artifact(audience_rule="activity"))
    assert [user for user, _ in activity.audience("b", k=5)] == ["alice", "bob"]
    assert activity.audience("b", k=5)[1][1] == pytest.approx(0.6 - 3.0 + np.log(2))


def test_popular_is_the_fallback_ranking(scorer):
    assert [item for item, _ in scorer.popular(k=2)] == ["c", "a"]
    assert [item for item, _ in scorer.popular(k=2, exclude=["c"])] == ["a", "d"]


def test_predict_rating_clips_and_falls_back_to_biases(scorer):
    assert scorer.predict_rating("alice", "b") == pytest.approx(3.0 + 0.5 + 0.25 + 1.0 * 0.5)
    assert scorer.predict_rating("alice", "a") == 5.0  # 5.5 clipped to the scale
    assert scorer.predict_rating("alice", "d") == 1.0  # -5.5 clipped
    assert scorer.predict_rating("nobody", "b") == pytest.approx(3.25)  # global mean + item bias
    assert scorer.predict_rating("bob", "unknown") == pytest.approx(2.5)


def test_without_a_rating_model_ratings_are_unavailable():
    with pytest.raises(Unavailable):
        Recommender(artifact(rating=False)).predict_rating("alice", "a")


def test_artifact_checks_shapes_and_format():
    broken = artifact()
    broken.arrays["item_vectors"] = broken.arrays["item_vectors"][:, :2]
    with pytest.raises(ValueError, match="item_vectors"):
        RecommenderArtifact(broken.arrays, broken.config)
    files = artifact().to_files()
    files["recommender.json"] = b'{"format_version": 99}'
    with pytest.raises(ValueError, match="format"):
        RecommenderArtifact.from_files(files)
