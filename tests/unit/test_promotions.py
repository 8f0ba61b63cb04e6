"""Promotions on the fakes: validation, the PROMOTIONS partition, status by time, the injection
into user, session and popular recommendations (best-scoring first, never seen, excluded or
outside the requested category, marked), the serving cache, and the admin routes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailor import bootstrap
from tailor.core.config import Settings
from tailor.core.errors import Invalid, NotFound, Unavailable
from tailor.promotions.inject import inject, slots
from tailor.promotions.store import PromotionStore
from tailor.storage import keys
from tests.fakes import FakeObjectStore, FakeStateTable
from tests.fakes.network import no_network  # noqa: F401  (autouse: connections refused)
from tests.fixtures.handlers import call
from tests.fixtures.synthetic import promote_version, recommender_files

USERS = [f"u-{n}" for n in range(10)]
ITEMS = [f"i-{n:02d}" for n in range(30)]
# Every third item is also a toy: toys are split between books (odd) and games (even).
CATEGORIES = {item: ["books" if n % 2 else "games"] + (["toys"] if n % 3 == 0 else []) for n, item in enumerate(ITEMS)}
TOYS = {item for item, names in CATEGORIES.items() if "toys" in names}
BOOKS = {item for item, names in CATEGORIES.items() if "books" in names}
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def settings() -> Settings:
    return Settings(stage="test", data_bucket="b", state_table="t", train_function_name=None,
                    export_function_name=None, max_upload_bytes=1 << 20, model_cache_seconds=60)


@pytest.fixture
def built():
    container = bootstrap.build(settings(), store=FakeObjectStore(), state=FakeStateTable())
    promote_version(container.model_registry, "recommender", "v1", recommender_files(USERS, ITEMS, CATEGORIES))
    container.promotions.now = lambda: NOW
    return container


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def ids(answer: dict) -> list[str]:
    return [item["item_id"] for item in answer["items"]]


def promoted(answer: dict) -> list[dict]:
    return [item for item in answer["items"] if item.get("promoted")]


# ---- validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fields, message", [
    ({"share": 0}, "share must be more than 0 and at most 1, got 0"),
    ({"share": 1.5}, "share must be more than 0 and at most 1, got 1.5"),
    ({"share": -0.2}, "share must be more than 0 and at most 1"),
    ({"share": float("nan")}, "share must be more than 0 and at most 1"),
    ({"category": None}, 'exactly one of "category" or "item_ids"'),
    ({"item_ids": ["i-01"]}, 'exactly one of "category" or "item_ids"'),
    ({"category": None, "item_ids": []}, '"item_ids" must list 1 to 500 items, got 0'),
    ({"category": None, "item_ids": [f"x{n}" for n in range(501)]}, "got 501"),
    ({"category": None, "item_ids": ["i-01", "i-02", "i-01"]}, "more than once: i-01"),
    ({"name": "  "}, '"name" must not be empty'),
    ({"name": "x" * 101}, "at most 100 characters"),
    ({"starts_at": "next tuesday"}, "starts_at must be an ISO-8601 timestamp"),
    ({"ends_at": "2030-13-01"}, "ends_at must be an ISO-8601 timestamp"),
    ({"starts_at": "2030-07-01T00:00:00Z", "ends_at": "2030-06-15T00:00:00Z"}, "must be after starts_at"),
    ({"starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-05-01T00:00:00Z"}, "is in the past"),
])
def test_invalid_promotions_are_refused_with_a_clear_message(built, fields, message):
    request = {"name": "Summer toys", "category": "toys", "share": 0.2, **fields}
    with pytest.raises(Invalid, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        built.promotions.create(**request)
    assert built.state_table.query(keys.PROMOTIONS_PK) == []


def test_unknown_categories_and_items_are_404_naming_them(built):
    with pytest.raises(NotFound, match="unknown category 'garden'"):
        built.promotions.create("Garden", 0.2, category="garden")
    with pytest.raises(NotFound, match="unknown item.*nope-1, nope-2") as raised:
        built.promotions.create("Mixed", 0.2, item_ids=["i-01", "nope-1", "nope-2"])
    assert raised.value.details == {"unknown_items": ["nope-1", "nope-2"]}
    # An item stored after training is known through the stored catalog.
    built.ingest_service.ingest_records("items", [{"item_id": "new-1", "title": "Brand new", "categories": "toys"}])
    assert built.promotions.create("New", 0.2, item_ids=["new-1", "i-01"])["item_ids"] == ["new-1", "i-01"]


def test_without_a_trained_model_a_promotion_is_503_saying_so():
    container = bootstrap.build(settings(), store=FakeObjectStore(), state=FakeStateTable())
    with pytest.raises(Unavailable, match="no recommender model has been trained yet"):
        container.promotions.create("Toys", 0.2, category="toys")


# ---- create, list, delete, status ----------------------------------------------------------------
def test_create_list_and_delete(built):
    created = built.promotions.create(" Summer  toys ", 0.25, category="toys", ends_at="2030-07-01T00:00:00+02:00")
    assert created == {"promotion_id": created["promotion_id"], "name": "Summer toys", "category": "toys",
                       "share": 0.25, "starts_at": "2030-06-01T12:00:00Z", "ends_at": "2030-06-30T22:00:00Z",
                       "created_at": "2030-06-01T12:00:00Z", "status": "active"}
    second = built.promotions.create("Two books", 1, item_ids=["i-01", "i-03"])
    assert second["ends_at"] is None and second["item_ids"] == ["i-01", "i-03"] and "category" not in second
    stored = built.state_table.get(keys.PROMOTIONS_PK, created["promotion_id"])
    assert stored["share"] == 0.25 and stored["category"] == "toys"
    listed = built.promotions.listing()["promotions"]
    assert [p["promotion_id"] for p in listed] == [created["promotion_id"], second["promotion_id"]]  # oldest first
    assert built.promotions.delete(created["promotion_id"]) == {"promotion_id": created["promotion_id"],
                                                                "deleted": True}
    assert [p["name"] for p in built.promotions.listing()["promotions"]] == ["Two books"]
    with pytest.raises(NotFound, match="unknown promotion"):
        built.promotions.delete(created["promotion_id"])


def test_status_follows_the_clock(built):
    store = built.promotions
    created = store.create("Later", 0.2, category="toys", starts_at="2030-06-02", ends_at="2030-06-03")
    assert created["status"] == "scheduled" and created["starts_at"] == "2030-06-02T00:00:00Z"
    for moment, status in ((datetime(2030, 6, 2, 0, 0, tzinfo=UTC), "active"),
                           (datetime(2030, 6, 2, 23, 59, tzinfo=UTC), "active"),
                           (datetime(2030, 6, 3, 0, 0, tzinfo=UTC), "ended")):
        store.now = lambda moment=moment: moment
        assert store.listing()["promotions"][0]["status"] == status
        assert [p.name for p in store.active()] == (["Later"] if status == "active" else [])


# ---- the pure injection --------------------------------------------------------------------------
ORGANIC = [(f"o{n}", 10.0 - n, "because you chose X") for n in range(10)]


def test_slots_are_the_ceiling_of_share_times_k_without_float_noise():
    assert [slots(s, 10) for s in (0.01, 0.1, 0.25, 0.3, 1.0)] == [1, 1, 3, 3, 10]
    assert slots(0.1, 30) == 3 and slots(0.7, 10) == 7 and slots(1.0, 1) == 1


def test_injection_takes_the_best_matching_items_not_in_the_list_at_the_end():
    offers = [("Toys", 0.3, [("t1", 1.0), ("o2", 9.0), ("t2", 3.0), ("t3", 2.0), ("t4", 0.5)])]
    out = inject(ORGANIC, offers, 10)
    assert [e.item_id for e in out] == ["o0", "o1", "o2", "o3", "o4", "o5", "o6", "t2", "t3", "t1"]
    assert [e.promotion for e in out[-3:]] == ["Toys"] * 3 and {e.reason for e in out[-3:]} == {"promoted: Toys"}
    assert out[2].promotion is None  # already listed: stays organic


def test_two_promotions_apply_oldest_first_and_never_take_more_than_k():
    offers = [("A", 0.5, [("a1", 5.0), ("a2", 4.0), ("shared", 9.0)]), ("B", 0.2, [("shared", 9.0), ("b1", 1.0)])]
    out = inject(ORGANIC[:5], offers, 5)
    # A: ceil(2.5) = 3 slots; B: 1 slot, and "shared" is A's already.
    assert [(e.item_id, e.promotion) for e in out] == [
        ("o0", None), ("shared", "A"), ("a1", "A"), ("a2", "A"), ("b1", "B")]
    out = inject(ORGANIC[:5], offers[::-1] + [("C", 1.0, [(f"c{n}", 1.0) for n in range(9)])], 5)
    assert [e.promotion for e in out] == ["B", "A", "A", "C", "C"]  # C gets what is left of k


def test_a_short_list_keeps_its_organic_items_and_gains_the_promoted_ones():
    out = inject(ORGANIC[:3], [("A", 0.2, [("a1", 1.0), ("a2", 0.9)])], 10)
    assert [e.item_id for e in out] == ["o0", "o1", "o2", "a1", "a2"]


ITEM = st.sampled_from([f"x{n}" for n in range(25)])


@given(organic=st.lists(ITEM, unique=True, max_size=20), k=st.integers(1, 20),
       offers=st.lists(st.tuples(st.floats(0.01, 1.0), st.lists(st.tuples(ITEM, st.floats(-5, 5)), max_size=15)),
                       max_size=3))
def test_injection_properties(organic, k, offers):
    listed = [(item, float(-n), "organic") for n, item in enumerate(organic)]
    named = [(f"P{n}", share, candidates) for n, (share, candidates) in enumerate(offers)]
    out = inject(listed, named, k)
    items = [e.item_id for e in out]
    assert len(items) == len(set(items)) <= k
    promoted_items = sum(e.promotion is not None for e in out)
    organic_out = [e.item_id for e in out if e.promotion is None]
    assert organic_out == organic[:len(organic_out)]  # the organic head, in its order
    assert len(out) == min(k, len(organic[:k]) + promoted_items)
    for name, share, candidates in named:
        mine = [e for e in out if e.promotion == name]
        assert len(mine) <= math.ceil(round(share * k, 9))
        assert all((e.item_id, e.score) in candidates and e.item_id not in organic[:k] for e in mine)
        assert [e.score for e in mine] == sorted((e.score for e in mine), reverse=True)
    assert all(e.promotion is None for e in out[:len(organic_out)])  # promoted items only at the end


# ---- serving -------------------------------------------------------------------------------------
def test_user_recommendations_give_the_promotion_its_slots_best_scoring_first(built):
    built.promotions.create("Summer toys", 0.3, category="toys")
    service, rec = built.recommend_service, built.recommend_service.models.get()[0].recommender
    plain = RecommendServiceWithout(built).for_user("u-1", k=10)
    answer = service.for_user("u-1", k=10)
    assert len(answer["items"]) == 10 and ids(answer)[:7] == ids(plain)[:7]
    marked = promoted(answer)
    assert [i["item_id"] for i in marked] == ids(answer)[7:]
    assert all(i["promotion"] == "Summer toys" and i["reason"] == "promoted: Summer toys" for i in marked)
    folded = rec.fold_in("u-1", [])
    expected = rec.recommend_folded(folded, 3, exclude=ids(plain), allowed_items=sorted(TOYS))
    assert [(i["item_id"], i["score"]) for i in marked] == [(item, round(score, 6)) for item, score in expected]
    assert not set(ids(answer)) & set(rec.seen_items("u-1"))
    assert all("promoted" not in i for i in answer["items"][:7])


def test_promoted_items_respect_seen_exclusions_and_the_category_filter(built):
    rec = built.recommend_service.models.get()[0].recommender
    built.promotions.create("Everything", 1.0, item_ids=ITEMS)
    seen = rec.seen_items("u-2")
    answer = built.recommend_service.for_user("u-2", k=5, exclude=["i-03", "i-09"])
    assert len(answer["items"]) == 5 and all(i.get("promoted") for i in answer["items"])
    assert not set(ids(answer)) & (set(seen) | {"i-03", "i-09"})
    with_seen = built.recommend_service.for_user("u-2", k=30, include_seen=True)
    assert set(seen) <= set(ids(with_seen))
    books = built.recommend_service.for_user("u-2", k=5, category="books")
    assert set(ids(books)) <= BOOKS and promoted(books)


def test_a_category_promotion_inside_a_requested_category_promotes_only_items_of_both(built):
    built.promotions.create("Toys", 0.6, category="toys")
    answer = built.recommend_service.for_user("u-4", k=5, category="books")
    assert set(ids(answer)) <= BOOKS
    assert {i["item_id"] for i in promoted(answer)} <= TOYS & BOOKS and promoted(answer)


def test_two_promotions_share_the_list_oldest_first(built):
    built.promotions.create("First", 0.2, item_ids=["i-05", "i-07", "i-11"])
    built.promotions.create("Second", 0.2, category="toys")
    answer = built.recommend_service.for_user("u-6", k=10)
    names = [i.get("promotion") for i in answer["items"]]
    assert len(answer["items"]) == 10 and names[:6] == [None] * 6
    assert 1 <= names.count("First") <= 2 and names.count("Second") == 2
    assert names.index("Second") > max(n for n, name in enumerate(names) if name == "First")


def test_session_and_popular_recommendations_are_promoted_too_similar_and_rankings_not(built):
    built.promotions.create("Toys", 0.2, category="toys")
    service = built.recommend_service
    session = service.for_session(["i-01", "i-02"], k=10)
    assert session["strategy"] == "session" and len(promoted(session)) == 2
    assert not {"i-01", "i-02"} & set(ids(session)) and {i["item_id"] for i in promoted(session)} <= TOYS
    cold = service.for_user("somebody-new", k=10)
    assert cold["strategy"] == "popular" and len(promoted(cold)) == 2 and len(cold["items"]) == 10
    rec = service.models.get()[0].recommender
    organic = ids(cold)[:8]
    expected = rec.popular(2, exclude=ids(RecommendServiceWithout(built).for_user("somebody-new", k=10)),
                           allowed_items=sorted(TOYS))
    assert [i["item_id"] for i in promoted(cold)] == [item for item, _ in expected] and len(organic) == 8
    assert not promoted(service.similar("i-01", k=10))
    assert not promoted(service.rank("u-1", ITEMS[:10]))


def test_scheduled_and_ended_promotions_do_not_apply(built):
    store = built.promotions
    store.create("Later", 1.0, category="toys", starts_at="2030-06-02T00:00:00Z")
    store.create("Short", 1.0, category="games", ends_at="2030-06-01T13:00:00Z")
    store.now = lambda: datetime(2030, 6, 1, 14, 0, tzinfo=UTC)  # Short ended, Later not started
    assert not promoted(built.recommend_service.for_user("u-1", k=10))
    store.now = lambda: datetime(2030, 6, 2, 1, 0, tzinfo=UTC)
    assert {i["promotion"] for i in promoted(built.recommend_service.for_user("u-1", k=10))} == {"Later"}


def test_serving_queries_the_promotions_once_per_cache_period():
    state = CountingState()
    clock = [0.0]
    store = PromotionStore(state, ttl=30, clock=lambda: clock[0], now=lambda: NOW)
    state.put({"pk": keys.PROMOTIONS_PK, "sk": "p1", "promotion_id": "p1", "name": "Toys", "share": 0.5,
               "category": "toys", "starts_at": iso(NOW - timedelta(days=1)), "created_at": iso(NOW)})
    assert [p.name for p in store.active()] == ["Toys"] and state.queries == 1
    state.delete(keys.PROMOTIONS_PK, "p1")
    clock[0] = 29.0
    assert [p.name for p in store.active()] == ["Toys"] and state.queries == 1  # cached
    clock[0] = 30.0
    assert store.active() == [] and state.queries == 2
    state.fail = True
    clock[0] = 61.0
    assert store.active() == []  # a failed read keeps the last list, and serving goes on


def test_a_hand_edited_row_is_skipped_not_a_500(built):
    built.state_table.put({"pk": keys.PROMOTIONS_PK, "sk": "bad", "name": "Broken"})
    built.promotions.create("Toys", 0.2, category="toys")
    assert [p.name for p in built.promotions.active()] == ["Toys"]


class CountingState(FakeStateTable):
    def __init__(self):
        super().__init__()
        self.queries, self.fail = 0, False

    def query(self, pk, **options):
        self.queries += 1
        if self.fail:
            raise RuntimeError("throttled")
        return super().query(pk, **options)


def RecommendServiceWithout(container):  # noqa: N802  (reads like the service it builds)
    """The container's recommendations without promotions: what the organic list is."""
    from tailor.recommend.service import RecommendService

    service = container.recommend_service
    return RecommendService(service.models, new_items=service.new_items, recent=service.recent)


# ---- the admin routes through IngestFunction's handler -------------------------------------------
def _call(method: str, path: str, body=None, resource: str | None = None, path_params=None) -> tuple[int, dict]:
    return call("ingest", method, path, body, resource=resource, path_params=path_params)


def test_the_admin_routes_create_list_and_delete(built):
    try:
        bootstrap.use(built)
        status, created = _call("POST", "/v1/promotions", {"name": "Toys", "category": "toys", "share": 0.3})
        assert status == 201 and created["status"] == "active" and created["promotion_id"]
        status, body = _call("GET", "/v1/promotions")
        assert status == 200 and [p["promotion_id"] for p in body["promotions"]] == [created["promotion_id"]]
        status, body = _call("POST", "/v1/promotions", {"name": "Bad", "category": "toys", "share": 1.5})
        assert status == 422 and body["error"]["message"] == "share must be more than 0 and at most 1, got 1.5"
        status, body = _call("POST", "/v1/promotions", {"name": "Typo", "category": "toys", "share": 0.2,
                                                        "end": "2031-01-01"})
        assert status == 422 and "end" in body["error"]["message"]
        status, body = _call("POST", "/v1/promotions", {"name": "Garden", "category": "garden", "share": 0.2})
        assert status == 404 and "garden" in body["error"]["message"]
        path = f"/v1/promotions/{created['promotion_id']}"
        params = {"promotion_id": created["promotion_id"]}
        status, body = _call("DELETE", path, resource="/v1/promotions/{promotion_id}", path_params=params)
        assert status == 200 and body == {"promotion_id": created["promotion_id"], "deleted": True}
        status, body = _call("DELETE", path, resource="/v1/promotions/{promotion_id}", path_params=params)
        assert status == 404
    finally:
        bootstrap.reset()
