"""The privacy erase on the in-memory fakes (no moto, no network): each store's `erase_user`
removes that customer's data and nobody else's, and `EraseService` only orchestrates them."""

from __future__ import annotations

import pytest

from tailor.core.errors import NotFound
from tailor.customers.service import ProfileStore
from tailor.datasets import store as datasets
from tailor.datasets.ingest import IngestService
from tailor.models.registry import ModelRegistry
from tailor.privacy import erase
from tailor.privacy.erase import EraseService, UserErasure
from tailor.sentiment import service as sentiment
from tailor.storage import keys
from tests.fakes import FakeObjectStore, FakeStateTable
from tests.fakes.network import no_network  # noqa: F401  (autouse: connections refused)


def shop():
    store, state = FakeObjectStore(), FakeStateTable()
    ingest = IngestService(store, state, max_upload_bytes=2**20, on_stored=ProfileStore(state).record)
    ingest.ingest_records("events", [{"user_id": "ann", "item_id": "i1", "timestamp": "2030-01-01T00:00:00Z"},
                                     {"user_id": "bob", "item_id": "i1", "timestamp": "2030-01-01T00:00:01Z"},
                                     {"user_id": "ann", "item_id": "i2", "timestamp": "2030-01-01T00:00:02Z"}])
    return store, state


def test_the_datasets_erase_removes_only_that_customers_rows_and_counts_them():
    store, state = shop()
    erasure = UserErasure(store, "ann", "2030-01-02T00:00:00Z")
    datasets.erase_user(erasure, state)
    table = datasets.read_dataset(store, "interactions")
    assert table.column("user_id").to_pylist() == ["bob"]
    assert erasure.report["datasets"]["interactions"]["rows_removed"] == 2
    assert state.get(keys.DATASET_STATS_PK, "interactions")["rows_stored"] == 1


def test_the_profile_erase_removes_the_profile_and_the_segment_sample_mention():
    store, state = shop()
    state.put({"pk": keys.SEGMENTS_PK, "sk": "s1", "segment_id": "s1", "size": 2, "sample_members": ["ann", "bob"]})
    erasure = UserErasure(store, "ann", "2030-01-02T00:00:00Z")
    ProfileStore(state).erase_user(erasure)
    assert ProfileStore(state).get("ann") is None and ProfileStore(state).get("bob") is not None
    assert state.get(keys.SEGMENTS_PK, "s1")["sample_members"] == ["bob"]
    assert erasure.found()


def test_the_sentiment_erase_removes_the_customers_own_summary_only():
    store, state = FakeObjectStore(), FakeStateTable()
    for user in ("ann", "bob"):
        state.put({"pk": keys.sentiment_pk("user", user), "sk": keys.SUMMARY_SK, "reviews": 1})
    erasure = UserErasure(store, "ann", "2030-01-02T00:00:00Z")
    sentiment.erase_user(erasure, state)
    assert state.get(keys.sentiment_pk("user", "ann"), keys.SUMMARY_SK) is None
    assert state.get(keys.sentiment_pk("user", "bob"), keys.SUMMARY_SK) is not None
    assert erasure.report["items"]["deleted"] == 1


def test_the_erase_service_writes_the_tombstone_then_calls_each_store_in_order(monkeypatch):
    store, state = shop()
    calls: list[str] = []
    monkeypatch.setattr(sentiment, "erase_user", lambda erasure, state: calls.append("sentiment"))
    real_datasets = datasets.erase_user

    def datasets_erase(erasure, state):
        assert state.get(erase.ERASED_PK, erase.user_hash("ann")) is not None, "the tombstone comes first"
        calls.append("datasets")
        real_datasets(erasure, state)

    monkeypatch.setattr(datasets, "erase_user", datasets_erase)
    monkeypatch.setattr(ProfileStore, "erase_user", lambda self, erasure: calls.append("profiles"))
    monkeypatch.setattr(ModelRegistry, "erase_user", lambda self, erasure: calls.append("models"))
    report = EraseService(store, state, ModelRegistry(store, state)).erase("ann")
    assert calls == ["sentiment", "datasets", "profiles", "models"]
    assert report["datasets"]["interactions"]["rows_removed"] == 2 and report["tombstone"]["key"]


def test_erasing_someone_nothing_is_stored_about_leaves_no_tombstone():
    store, state = shop()
    with pytest.raises(NotFound):
        EraseService(store, state, ModelRegistry(store, state)).erase("carol")
    assert state.get(erase.ERASED_PK, erase.user_hash("carol")) is None
