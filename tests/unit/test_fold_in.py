"""Fold-in on the fakes: events stored by ingest reach the next recommendation at once (seen,
cited in reasons, pooled into the user vector), customers new since training get personalised
lists from their events, re-sent events change nothing, and an erase removes them."""

from __future__ import annotations

import numpy as np
import pytest

from tailor.core.errors import NotFound
from tailor.recommend.recent import RECENT_LIMIT, RECENT_MAX_EVENTS, RECENT_MAX_USERS, RecentEvents
from tailor.recommend.scorer import Recommender, pooled_history
from tailor.recommend.service import RecommendService, ServedModel
from tailor.storage import keys
from tests.fakes import FakeStateTable
from tests.fakes.network import no_network  # noqa: F401  (autouse: connections refused)
from tests.fixtures.synthetic import recommender_files

USERS = [f"u-{n}" for n in range(10)]
ITEMS = [f"i-{n:02d}" for n in range(30)]


class _Cache:
    def __init__(self):
        self.model = ServedModel(Recommender.from_files(recommender_files(USERS, ITEMS)),
                                 {item: {"title": f"Title {item}"} for item in ITEMS})

    def get(self):
        return self.model, "v1"


def events(user, items, start=1_700_000_000_000, **extra):
    n = len(items)
    return {"user_id": [user] * n, "item_id": list(items), "timestamp": [start + 1000 * i for i in range(n)],
            "event_type": extra.get("event_type", ["view"] * n), "value": extra.get("value", [None] * n)}


@pytest.fixture
def live():
    state = FakeStateTable()
    recent = RecentEvents(state)
    return RecommendService(_Cache(), recent=recent.latest), recent, state  # type: ignore[arg-type]


def test_an_event_is_excluded_as_seen_and_named_in_a_reason_on_the_next_request(live):
    service, recent, _ = live
    before = service.for_user("u-3", k=10)
    clicked = before["items"][0]["item_id"]
    recent.record("interactions", events("u-3", [clicked]))
    after = service.for_user("u-3", k=10)
    assert after["strategy"] == "personalized"
    assert clicked not in [i["item_id"] for i in after["items"]]
    assert any(i["reason"] == f"because you chose Title {clicked}" for i in after["items"])
    assert after["items"] != before["items"][1:]  # the vector moved, not only the list shrank


def test_the_folded_vector_pools_recent_items_before_the_training_history():
    rec = _Cache().model.recommender
    trained = rec.recent_item_rows("u-2").tolist()
    new = [ITEMS.index(i) for i in ("i-20", "i-21")]
    folded = rec.fold_in("u-2", [ITEMS[r] for r in new])
    merged = list(dict.fromkeys(new + trained))[:3]  # the fixture's history length is 3
    assert folded.history_rows.tolist() == merged
    arrays = rec.artifact.arrays
    pooled = pooled_history(arrays["history_embeddings"], arrays["position_weights"], np.array([merged]))[0]
    expected = np.append(arrays["user_embeddings"][rec.user_row("u-2")] + pooled, 1.0)
    np.testing.assert_allclose(folded.vector, expected, rtol=1e-6)
    assert set(new) <= set(folded.seen_rows.tolist()) and folded.known and folded.new_items == 2
    # Nothing new: the very vector computed at load time.
    assert np.array_equal(rec.fold_in("u-2", []).vector, rec.user_matrix[rec.user_row("u-2")])


def test_a_customer_new_since_training_gets_personalized_recommendations_from_three_events(live):
    service, recent, _ = live
    assert service.for_user("newcomer", k=5)["strategy"] == "popular"
    recent.record("interactions", events("newcomer", ["i-04", "i-11", "i-17"]))
    answer = service.for_user("newcomer", k=5)
    assert answer["strategy"] == "personalized" and "folded in" in answer["note"]
    popular = [item for item, _ in _Cache().model.recommender.popular(5, exclude=["i-04", "i-11", "i-17"])]
    listed = [i["item_id"] for i in answer["items"]]
    assert listed != popular and not {"i-04", "i-11", "i-17"} & set(listed)


def test_unknown_items_only_leave_a_new_customer_on_popular_items(live):
    service, recent, _ = live
    recent.record("interactions", events("stranger", ["not-in-the-model"]))
    assert service.for_user("stranger", k=3)["strategy"] == "popular"
    with pytest.raises(NotFound):
        _Cache().model.recommender.fold_in("stranger", ["not-in-the-model"])


def test_a_low_rating_is_seen_but_never_cited(live):
    service, recent, _ = live
    recent.record("interactions", events("u-5", ["i-29"], event_type=["rating"], value=[1.0]))
    answer = service.for_user("u-5", k=10)
    assert "i-29" not in [i["item_id"] for i in answer["items"]]
    assert not any("Title i-29" in i["reason"] for i in answer["items"])


def test_rankings_use_the_folded_vector(live):
    service, recent, _ = live
    candidates = ITEMS[:12]
    before = service.rank("u-1", candidates)
    recent.record("interactions", events("u-1", ["i-25", "i-26", "i-27"]))
    after = service.rank("u-1", candidates)
    assert sorted(i["item_id"] for i in after["items"]) == sorted(candidates)
    assert [i["score"] for i in after["items"]] != [i["score"] for i in before["items"]]


def test_re_sent_events_are_idempotent_and_only_the_newest_are_kept_per_batch():
    state = FakeStateTable()
    recent = RecentEvents(state)
    batch = events("u-1", ITEMS * 3)  # 90 events, more than a request reads
    recent.record("interactions", batch)
    recent.record("interactions", batch)
    stored = state.query(keys.recent_pk("u-1"))
    assert len(stored) == RECENT_LIMIT
    latest = recent.latest("u-1")
    assert [e.timestamp_ms for e in latest] == sorted(batch["timestamp"], reverse=True)[:RECENT_LIMIT]
    assert latest[0].item_id == batch["item_id"][-1]


def test_other_datasets_and_bulk_history_imports_are_not_recorded():
    state = FakeStateTable()
    recent = RecentEvents(state)
    recent.record("users", {"user_id": ["u-1"]})
    many = {"user_id": [f"c-{n}" for n in range(RECENT_MAX_USERS + 1)]}
    many.update(item_id=["i-01"] * len(many["user_id"]), timestamp=[1] * len(many["user_id"]))
    recent.record("interactions", many)
    assert state.query(keys.recent_pk("u-1")) == [] and state.query(keys.recent_pk("c-0")) == []
    long = events("c-1", ["i-01"] * (RECENT_MAX_EVENTS + 1))
    recent.record("interactions", long)
    assert state.query(keys.recent_pk("c-1")) == []


def test_erase_removes_every_recent_event():
    from tailor.privacy.erase import UserErasure
    from tests.fakes import FakeObjectStore

    state = FakeStateTable()
    recent = RecentEvents(state)
    recent.record("interactions", events("u-1", ["i-01", "i-02"]))
    recent.record("interactions", events("u-2", ["i-01"]))
    erasure = UserErasure(FakeObjectStore(), "u-1", "2026-12-04T00:00:00.000Z")
    recent.erase_user(erasure)
    assert recent.latest("u-1") == [] and len(recent.latest("u-2")) == 1
    assert erasure.report["items"]["deleted"] == 2
