"""One suite, two implementations: the in-memory fakes (tests/fakes) and the real adapters
(tailor.storage.s3 / dynamo) against moto, with the template's bucket (versioned) and table. What
the unit tests assume of a fake is checked here against the real adapter."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from tailor.storage.dynamo import ConditionFailed, StateTable
from tailor.storage.s3 import ObjectStore
from tests.fakes import FakeObjectStore, FakeStateTable
from tests.integration.harness import table_definition


@pytest.fixture(params=["fake", "moto"])
def adapters(request, monkeypatch):
    if request.param == "fake":
        yield FakeObjectStore(), FakeStateTable()
        return
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="contract")
        s3.put_bucket_versioning(Bucket="contract", VersioningConfiguration={"Status": "Enabled"})
        boto3.client("dynamodb").create_table(TableName="contract", **table_definition())
        yield ObjectStore("contract"), StateTable("contract")


def test_objects_round_trip_list_by_prefix_and_miss_with_key_error(adapters):
    store, _ = adapters
    store.put("datasets/items/b.parquet", b"2")
    store.put("datasets/items/a.parquet", b"1")
    store.put_json("models/recommender/current.json", {"version": "v1", "score": 0.5})
    assert sorted(store.keys("datasets/items/")) == ["datasets/items/a.parquet", "datasets/items/b.parquet"]
    assert store.get("datasets/items/a.parquet") == b"1" and store.size("datasets/items/b.parquet") == 1
    assert store.get_json("models/recommender/current.json") == {"version": "v1", "score": 0.5}
    with pytest.raises(KeyError):
        store.get("nothing")
    assert store.size("nothing") is None


def test_delete_keeps_old_versions_and_purge_and_replace_remove_them(adapters):
    store, _ = adapters
    store.put("rejects/x.jsonl", b"old")
    store.put("rejects/x.jsonl", b"older data overwritten")
    store.delete("rejects/x.jsonl")
    assert list(store.keys("rejects/")) == [] and len(store.versions("rejects/x.jsonl")) == 3
    assert store.purge("rejects/x.jsonl") == 3 and store.versions("rejects/x.jsonl") == []
    store.put("exports/a.csv", b"1")
    store.put("exports/a.csv", b"2")
    assert store.replace("exports/a.csv", b"3") == 2
    assert store.get("exports/a.csv") == b"3" and len(store.versions("exports/a.csv")) == 1


def test_items_come_back_as_stored_numbers_and_copies(adapters):
    _, table = adapters
    item = {"pk": "MODEL#recommender", "sk": "VERSION#v1", "score": 0.25, "count": 3, "nested": {"a": [1, 2.5]}}
    table.put(item)
    got = table.get("MODEL#recommender", "VERSION#v1")
    assert got == item and isinstance(got["count"], int) and isinstance(got["score"], float)
    got["score"] = 1.0
    assert table.get("MODEL#recommender", "VERSION#v1")["score"] == 0.25
    assert table.get("MODEL#recommender", "VERSION#none") is None


def test_conditional_writes_lose_with_condition_failed(adapters):
    _, table = adapters
    table.put({"pk": "BATCH#b1", "sk": "BATCH"}, only_if_new=True)
    with pytest.raises(ConditionFailed):
        table.put({"pk": "BATCH#b1", "sk": "BATCH"}, only_if_new=True)
    table.update("JOB#j1", "JOB", set={"status": "QUEUED"})
    assert table.update("JOB#j1", "JOB", set={"status": "RUNNING"}, only_if={"status": "QUEUED"})["status"] == "RUNNING"
    with pytest.raises(ConditionFailed):
        table.update("JOB#j1", "JOB", set={"status": "RUNNING"}, only_if={"status": "QUEUED"})


def test_update_sets_adds_and_fills_missing_attributes(adapters):
    _, table = adapters
    first = table.update("INGEST#items", "STATS", add={"rows": 5}, set_if_missing={"first_at": "t1"})
    second = table.update("INGEST#items", "STATS", add={"rows": 2}, set={"last_at": "t2"},
                          set_if_missing={"first_at": "t9"})
    assert first["rows"] == 5 and second == {"pk": "INGEST#items", "sk": "STATS", "rows": 7, "first_at": "t1",
                                             "last_at": "t2"}


def test_queries_order_by_sort_key_and_page(adapters):
    _, table = adapters
    table.put_many({"pk": "JOBS", "sk": f"2026-01-0{day}#j{day}", "job_id": f"j{day}"} for day in range(1, 6))
    table.put({"pk": "OTHER", "sk": "x"})
    assert [i["job_id"] for i in table.query("JOBS")] == ["j1", "j2", "j3", "j4", "j5"]
    assert [i["job_id"] for i in table.query("JOBS", newest_first=True, limit=2)] == ["j5", "j4"]
    page, after = table.query_page("JOBS", limit=2, newest_first=True)
    assert [i["job_id"] for i in page] == ["j5", "j4"] and after is not None
    page, after = table.query_page("JOBS", limit=2, newest_first=True, after_sk=after)
    assert [i["job_id"] for i in page] == ["j3", "j2"]
    page, after = table.query_page("JOBS", limit=2, newest_first=True, after_sk=after)
    assert [i["job_id"] for i in page] == ["j1"] and after is None
    table.delete("JOBS", "2026-01-01#j1")
    assert len(table.query("JOBS")) == 4


def test_a_transaction_is_all_or_nothing(adapters):
    _, table = adapters
    table.put({"pk": "BATCH#b1", "sk": "BATCH"})
    with pytest.raises(ConditionFailed):
        table.transact(new=[{"pk": "BATCH#b1", "sk": "BATCH"}], puts=[{"pk": "INGEST#items", "sk": "r1"}],
                       adds=[("INGEST#items", "STATS", {}, {"rows": 1})])
    assert table.get("INGEST#items", "r1") is None and table.get("INGEST#items", "STATS") is None
    table.transact(new=[{"pk": "BATCH#b2", "sk": "BATCH"}], puts=[{"pk": "INGEST#items", "sk": "r2"}],
                   adds=[("INGEST#items", "STATS", {"last": "b2"}, {"rows": 1})])
    assert table.get("INGEST#items", "STATS")["rows"] == 1 and table.get("BATCH#b2", "BATCH") is not None


def test_put_many_takes_one_key_twice_and_the_later_item_wins(adapters):
    _, table = adapters
    table.put_many([{"pk": "RECENT#u1", "sk": "1#i1", "n": 1}, {"pk": "RECENT#u1", "sk": "2#i2", "n": 2},
                    {"pk": "RECENT#u1", "sk": "1#i1", "n": 3}])
    assert [(i["sk"], i["n"]) for i in table.query("RECENT#u1")] == [("1#i1", 3), ("2#i2", 2)]


def test_run_many_runs_every_item_on_a_table_and_raises_the_first_failure_after_all(adapters):
    _, table = adapters

    def work(worker_table, n: int) -> int:
        worker_table.put({"pk": f"RUN#{n}", "sk": "x", "n": n}, only_if_new=True)
        return worker_table.update(f"RUN#{n}", "x", add={"n": 1})["n"]

    assert table.run_many(work, list(range(20))) == [n + 1 for n in range(20)]
    with pytest.raises(ConditionFailed):  # item 3 exists already; the others still run
        table.run_many(work, [3, 20, 21, 22, 23])
    assert [table.get(f"RUN#{n}", "x")["n"] for n in (20, 23)] == [21, 24]


def test_a_record_stream_delivers_every_record_under_the_buffer_prefix(adapters):
    """The fake stream writes what moto's Firehose writes: the records of a call, concatenated, in
    one object under the delivery stream's prefix (Firehose on AWS gathers calls and gzips)."""
    from tailor.storage import keys
    from tailor.storage.stream import RecordStream
    from tests.fakes import FakeRecordStream
    from tests.integration.harness import stream_definition

    store, _ = adapters
    prefix = keys.buffer_prefix("interactions")
    if isinstance(store, FakeObjectStore):
        stream = FakeRecordStream(store, prefix)
    else:
        definition = stream_definition()
        definition["ExtendedS3DestinationConfiguration"]["BucketARN"] = "arn:aws:s3:::contract"
        boto3.client("firehose").create_delivery_stream(DeliveryStreamName="contract", **definition)
        stream = RecordStream("contract")
    stream.put([b'{"n": 1}\n', b'{"n": 2}\n'])
    (key,) = list(store.keys(prefix))
    assert store.get(key) == b'{"n": 1}\n{"n": 2}\n'


def test_purge_many_removes_every_version_of_exactly_those_keys(adapters):
    store, _ = adapters
    for key in ("buffer/interactions/a", "buffer/interactions/b", "buffer/interactions/bb"):
        store.put(key, b"1")
        store.put(key, b"2")
    store.delete("buffer/interactions/a")
    assert store.purge_many(["buffer/interactions/a", "buffer/interactions/b"]) == 5
    assert list(store.keys("buffer/")) == ["buffer/interactions/bb"]
    assert store.versions("buffer/interactions/a") == [] and store.versions("buffer/interactions/b") == []
    assert len(store.versions("buffer/interactions/bb")) == 2 and store.purge_many([]) == 0
