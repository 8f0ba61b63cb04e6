"""Privacy erase building blocks: a model without a user's rows, the tombstone rule at ingest,
object rewrites that leave no older S3 version, and serving reloading a rewritten model."""

import boto3
import numpy as np
import pytest
from moto import mock_aws
from test_recommender import artifact

from tailor.core.errors import NotFound
from tailor.datasets.schemas import SCHEMAS, validate_records
from tailor.models.cache import ModelCache
from tailor.models.registry import ModelRegistry
from tailor.privacy.erase import drop_erased, user_hash
from tailor.recommend.scorer import Recommender
from tailor.storage.s3 import ObjectStore


def test_without_users_removes_every_row_of_the_user():
    full = artifact()
    alice_before = Recommender(full).recommend("alice", k=3)
    slim = full.without_users(["bob"])
    assert slim.arrays["user_ids"].tolist() == ["alice"]
    for name in ("user_embeddings", "user_history", "user_activity", "user_log_normalizer",
                 "rating_user_factors", "rating_user_bias"):
        assert len(slim.arrays[name]) == 1, name
    assert slim.arrays["seen_indptr"].tolist() == [0, 1] and slim.arrays["seen_indices"].tolist() == [0]
    scorer = Recommender.from_files(slim.to_files())  # shapes still valid after a save round trip
    assert not scorer.has_user("bob")
    with pytest.raises(NotFound):
        scorer.recommend("bob")
    assert scorer.recommend("alice", k=3) == alice_before  # everyone else is served as before
    assert "bob" not in [u for u, _ in scorer.audience("b", k=10, exclude_seen=False)]


def test_without_users_drops_a_user_in_the_middle_of_the_csr():
    slim = artifact().without_users(["alice"])
    assert slim.arrays["user_ids"].tolist() == ["bob"]
    assert slim.arrays["seen_indptr"].tolist() == [0, 1] and slim.arrays["seen_indices"].tolist() == [2]
    assert artifact().without_users(["nobody"]).arrays["user_ids"].tolist() == ["alice", "bob"]


ERASED_AT = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def test_old_rows_of_an_erased_user_are_refused_without_their_content():
    records = [
        {"user_id": "gone-user", "item_id": "i1", "timestamp": "2023-01-01T00:00:00Z"},  # before: refused
        {"user_id": "kept-user", "item_id": "i1", "timestamp": "2023-01-01T00:00:00Z"},
        {"user_id": "gone-user", "item_id": "i2", "timestamp": "2024-06-01T00:00:00Z"},  # returning customer
        {"user_id": "kept-user", "item_id": "oops"},  # an ordinary reject (no timestamp)
    ]
    validated = validate_records(SCHEMAS["interactions"], records)
    dropped = drop_erased(validated, {user_hash("gone-user"): ERASED_AT})
    assert dropped == 1
    assert validated.columns["user_id"] == ["kept-user", "gone-user"]
    assert validated.row_numbers == [2, 3]
    erased = [r for r in validated.rejects if "privacy" in r.reason]
    assert [(r.row, r.reason, r.record) for r in erased] == [
        (1, "user erased by a privacy request on 2023-11-14", "")]
    assert validated.rows + len(validated.rejects) == len(records)  # every row accounted for


def test_undated_rows_of_an_erased_user_are_refused_unless_dated_after_the_erase():
    users = validate_records(SCHEMAS["users"], [
        {"user_id": "gone-user", "tier": "gold"},
        {"user_id": "gone-user", "tier": "new", "updated_at": "2025-01-01"},
        {"user_id": "other", "tier": "gold"},
    ])
    drop_erased(users, {user_hash("gone-user"): ERASED_AT})
    assert users.columns["user_id"] == ["gone-user", "other"] and users.columns["tier"] == ["new", "gold"]
    reviews = validate_records(SCHEMAS["reviews"], [{"user_id": "gone-user", "text": "nice"},
                                                    {"user_id": None, "text": "anonymous"}])
    drop_erased(reviews, {user_hash("gone-user"): ERASED_AT})
    assert reviews.columns["text"] == ["anonymous"] and reviews.rejects[0].record == ""


def test_no_tombstones_leaves_the_batch_alone():
    validated = validate_records(SCHEMAS["interactions"], [{"user_id": "a", "item_id": "b", "timestamp": 1}])
    assert drop_erased(validated, {}) == 0 and validated.rows == 1


@pytest.fixture(params=[True, False], ids=["versioned", "unversioned"])
def store(request, monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="privacy-test")
        if request.param:
            s3.put_bucket_versioning(Bucket="privacy-test", VersioningConfiguration={"Status": "Enabled"})
        yield ObjectStore("privacy-test", s3)


def all_versions(store):
    listing = store.client.list_object_versions(Bucket=store.bucket)
    return listing.get("Versions", []) + listing.get("DeleteMarkers", [])


def test_replace_and_purge_leave_no_older_version(store):
    store.put("k", b"secret v1")
    store.put("k", b"secret v2")
    store.replace("k", b"clean")
    assert store.get("k") == b"clean"
    assert [v["Key"] for v in all_versions(store)] == ["k"]
    store.put("other", b"x")
    store.delete("other")  # a plain delete keeps the bytes as a noncurrent version when versioned
    store.purge("other")
    store.purge("k")
    assert all_versions(store) == []
    assert store.purge("never-there") == 0


def test_model_cache_reloads_when_the_pointer_revision_changes(store):
    from tailor.storage.dynamo import StateTable

    class NoState(StateTable):
        def __init__(self):
            pass

    registry = ModelRegistry(store, NoState())
    store.put_json("models/recommender/current.json", {"model": "recommender", "version": "v1"})
    loads = []
    clock = [0.0]
    cache = ModelCache(registry, "recommender", lambda _r, version: loads.append(version) or len(loads),
                       ttl=10, clock=lambda: clock[0])
    assert cache.get() == (1, "v1")
    clock[0] = 20
    assert cache.get() == (1, "v1") and loads == ["v1"]  # same version and revision: no reload
    assert registry.bump_revision("recommender", "privacy erase")["revision"] == 1
    assert cache.get() == (1, "v1")  # within the TTL the container keeps what it has
    clock[0] = 40
    assert cache.get() == (2, "v1") and loads == ["v1", "v1"]  # reloaded after the TTL
    assert registry.bump_revision("missing-model", "x") is None


def test_model_cache_reloads_on_the_next_request_after_a_serving_signal(store):
    """The erase path: pointer revision bumped, then ModelCache.signal; a warm cache far from its
    TTL reloads on its very next request, with one stamp read per request and no reload otherwise."""
    from tailor.storage.dynamo import StateTable

    class DictState(StateTable):
        def __init__(self):
            self.items, self.reads, self.fail = {}, 0, False

        def get(self, pk, sk):
            self.reads += 1
            if self.fail:
                raise ConnectionError("table unavailable")
            return self.items.get((pk, sk))

        def put(self, item, only_if_new=False):
            self.items[(item["pk"], item["sk"])] = dict(item)

    state = DictState()
    registry = ModelRegistry(store, state)
    store.put_json("models/recommender/current.json", {"model": "recommender", "version": "v1"})
    loads = []
    cache = ModelCache(registry, "recommender", lambda _r, version: loads.append(version) or len(loads),
                       ttl=3600, clock=lambda: 0.0)
    assert cache.get() == (1, "v1")
    reads = state.reads
    for _ in range(5):
        assert cache.get() == (1, "v1")
    assert loads == ["v1"] and state.reads == reads + 5  # one small read per request, no reload
    registry.bump_revision("recommender", "privacy erase")
    ModelCache.signal(state, "recommender", "privacy erase")
    assert cache.get() == (2, "v1") and loads == ["v1", "v1"]  # the next request, not after the TTL
    assert cache.get() == (2, "v1") and loads == ["v1", "v1"]
    # a signal without a pointer change re-reads the pointer once and loads nothing
    ModelCache.signal(state, "recommender", "again")
    assert cache.get() == (2, "v1") and loads == ["v1", "v1"]
    state.fail = True  # the stamp cannot be read: the loaded model keeps serving
    assert cache.get() == (2, "v1")
    without = ModelCache(registry, "recommender", lambda _r, v: v, ttl=3600, clock=lambda: 0.0, check_stamp=False)
    without.get()
    state.fail, reads = False, state.reads
    without.get()
    assert state.reads == reads  # check_stamp=False: no read per request
    store.put_json("models/sentiment/current.json", {"model": "sentiment", "version": "s1"})
    sentiment = ModelCache(registry, "sentiment", lambda _r, v: v, ttl=3600, clock=lambda: 0.0)
    sentiment.get()
    reads = state.reads
    sentiment.get()
    assert state.reads == reads  # the sentiment model holds no customers: no stamp read by default


def test_users_erased_while_a_job_trained_are_found_by_their_hash():
    from tailor.privacy.erase import users_erased_since

    class Tombstones:
        def query(self, pk):
            assert pk == "ERASED"
            return [{"sk": user_hash("early"), "erased_at_ms": 100}, {"sk": user_hash("late"), "erased_at_ms": 500}]

    assert users_erased_since(Tombstones(), np.array(["early", "late", "kept"]), since_ms=200) == ["late"]
