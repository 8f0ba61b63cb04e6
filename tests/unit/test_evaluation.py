"""Metrics of protocols T1, A1 and R1 on examples small enough to compute by hand."""

import math

import numpy as np
import pytest

from tailor.recommend import evaluation


def test_temporal_holdout_takes_the_newest_ceil_fifth_per_user_and_breaks_time_ties_by_item():
    # user 1: five interactions -> ceil(1.0) = 1 held out; the newest time (50) has two items,
    # and the tie goes to the larger item id (9), which counts as newer.
    # user 2: six interactions -> ceil(1.2) = 2 held out: the two newest.
    users = np.array([1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    items = np.array([1, 2, 3, 9, 4, 1, 2, 3, 4, 5, 6])
    times = np.array([10, 20, 30, 50, 50, 1, 2, 3, 4, 6, 5])
    held = evaluation.temporal_holdout(users, items, times, 0.2)
    assert sorted(zip(users[held], items[held])) == [(1, 9), (2, 5), (2, 6)]


def test_temporal_holdout_does_not_round_up_a_float_product_that_is_an_integer():
    # 0.2 * 15 is 3.0000000000000004 in floating point; ceil of that would be 4.
    held = evaluation.temporal_holdout(np.zeros(15), np.arange(15), np.arange(15), 0.2)
    assert held.sum() == 3 and held[-3:].all()


def test_temporal_holdout_rejects_bad_input():
    with pytest.raises(ValueError):
        evaluation.temporal_holdout([1, 2], [1], [1, 2])
    with pytest.raises(ValueError):
        evaluation.temporal_holdout([1], [1], [1], fraction=1.0)


def test_ranking_metrics_by_hand():
    top = np.array([[3, 1, 7], [0, 2, 5], [4, 6, 8]])
    relevant = [np.array([1, 9]), np.array([], dtype=int), np.array([4, 6, 8, 0])]
    m = evaluation.ranking_metrics(top, relevant, n_items=10)
    # user 0: one hit at rank 2 of 2 relevant; user 1 has nothing held out and is skipped;
    # user 2: three hits in three, with four relevant (ideal = min(4, 3) = 3 hits).
    dcg0 = 1 / math.log2(3)
    idcg0 = 1 + 1 / math.log2(3)
    assert m["users"] == 2
    assert m["precision"] == pytest.approx((1 / 3 + 3 / 3) / 2)
    assert m["recall"] == pytest.approx((1 / 2 + 3 / 3) / 2)
    assert m["ndcg"] == pytest.approx((dcg0 / idcg0 + 1.0) / 2)
    assert m["coverage"] == pytest.approx(6 / 10)  # items 3, 1, 7, 4, 6, 8 (user 1 is not evaluated)


def test_ranking_metrics_ignore_padding_and_cut_at_k():
    top = np.array([[5, -1, -1], [2, 3, 1]])
    relevant = [np.array([5]), np.array([1])]
    m = evaluation.ranking_metrics(top, relevant, n_items=6, k=2)
    assert m["precision"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["recall"] == pytest.approx(0.5)
    assert m["ndcg"] == pytest.approx(0.5)


def test_top_k_unseen_skips_seen_items_and_pads_when_candidates_run_out():
    scores = np.array([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4]])
    indptr, indices = np.array([0, 2, 5]), np.array([0, 1, 0, 1, 2])
    top = evaluation.top_k_unseen(scores, indptr, indices, 3)
    assert top.tolist() == [[3, 2, -1], [3, -1, -1]]
    # Score rows may belong to any users: here row 0 is user 1 and row 1 is user 0.
    top = evaluation.top_k_unseen(scores, indptr, indices, 1, rows=np.array([1, 0]))
    assert top.tolist() == [[3], [3]]
    top = evaluation.top_k_unseen(scores[::-1], indptr, indices, 2, rows=np.array([1, 0]))
    assert top.tolist() == [[3, -1], [3, 2]]


def test_audience_recall_by_hand():
    # 4 users x 2 items. Item 0: held-out engagers are users 2 and 3; user 0 saw it in train.
    scores = np.array([[9.0, 0.0], [5.0, 0.0], [4.0, 0.0], [1.0, 0.0]])
    train_users, train_items = np.array([0]), np.array([0])
    test_users, test_items = np.array([2, 3, 1]), np.array([0, 0, 1])
    result = evaluation.audience_recall(scores, train_users, train_items, test_users, test_items,
                                        k=2, min_test_users=2)
    # Only item 0 has >= 2 engagers. Candidates (user 0 excluded): 1 (5.0), 2 (4.0) -> one hit of 2.
    assert result == {"items": 1, "recall": pytest.approx(0.5)}


def test_audience_recall_does_not_count_train_engagers_as_new():
    scores = np.ones((3, 1))
    result = evaluation.audience_recall(scores, np.array([0]), np.array([0]), np.array([0, 1]), np.array([0, 0]),
                                        k=2, min_test_users=2)
    assert result["items"] == 0  # user 0 already engaged in train, so only one new engager


def test_rmse_and_mae():
    assert evaluation.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert evaluation.mae([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)
