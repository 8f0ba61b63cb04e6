"""The event path for a website's traffic (tailor.datasets.buffer) on the in-memory fakes: API
events go to the stream, are read with the Parquet files at once, and compaction folds them into
each month's few files with nothing lost, doubled or kept of an erased customer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.datasets import buffer
from tailor.datasets import store as datasets
from tailor.datasets.ingest import IngestService
from tailor.datasets.schemas import SCHEMAS, validate_records
from tailor.privacy.erase import EraseService, UserErasure
from tailor.storage import keys
from tailor.storage.stream import MAX_BYTES_PER_CALL, MAX_RECORDS_PER_CALL, RecordStream, StreamUnavailable, chunks
from tests.fakes import FakeObjectStore, FakeRecordStream, FakeStateTable
from tests.fakes.network import no_network  # noqa: F401  (autouse: connections refused)

DAY = 86_400_000
ID_CHARACTERS = st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"))
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z: before the erases these tests make


def shop():
    store, state = FakeObjectStore(), FakeStateTable()
    stream = FakeRecordStream(store, keys.buffer_prefix("interactions"))
    return IngestService(store, state, max_upload_bytes=2**20, stream=stream), store, state, stream


def event(user: str, item: str, ms: int, kind: str = "view") -> dict:
    return {"user_id": user, "item_id": item, "timestamp": ms, "event_type": kind}


def parquet_keys(store) -> list[str]:
    return datasets.dataset_keys(store, "interactions")


def rows(store) -> list[tuple]:
    table = datasets.read_dataset(store, "interactions")
    return sorted(zip(*(table.column(c).to_pylist() for c in ("user_id", "item_id", "event_type")),
                      (int(t.timestamp() * 1000) for t in table.column("timestamp").to_pylist())))


def test_an_api_event_goes_to_the_stream_not_to_its_own_parquet_object_and_is_read_at_once():
    ingest, store, state, stream = shop()
    result = ingest.ingest_records("events", [event("ann", "i1", START)])
    assert result.status == "stored" and result.rows_stored == 1
    assert stream.calls == 1 and parquet_keys(store) == []
    assert rows(store) == [("ann", "i1", "view", START)]
    stats = state.get(keys.DATASET_STATS_PK, "interactions")
    assert stats["rows_stored"] == 1 and stats["files"] == 0 and stats["last_stored"]
    assert datasets.has_rows(store, "interactions")


def test_the_same_request_twice_is_streamed_and_counted_once():
    ingest, store, state, stream = shop()
    ingest.ingest_records("events", [event("ann", "i1", START)])
    again = ingest.ingest_records("events", [event("ann", "i1", START)])
    assert again.status == "duplicate" and stream.calls == 1
    assert state.get(keys.DATASET_STATS_PK, "interactions")["rows_stored"] == 1


def test_files_and_other_datasets_still_write_parquet():
    ingest, store, _, stream = shop()
    ingest.ingest_records("items", [{"item_id": "i1", "title": "Mug"}])
    assert stream.calls == 0 and datasets.dataset_keys(store, "items")


def test_rejected_rows_of_a_streamed_batch_are_kept_with_their_reasons():
    ingest, store, _, stream = shop()
    result = ingest.ingest_records("events", [event("ann", "i1", START), {"user_id": "bob", "timestamp": START}])
    assert result.rows_stored == 1 and result.rows_rejected == 1 and store.get(result.rejects_key)
    assert stream.calls == 1


def test_compaction_turns_thousands_of_single_events_into_one_file_per_month_losing_and_doubling_nothing():
    ingest, store, state, _ = shop()
    sent = []
    for n in range(1_200):  # two months, one event per request, as a website sends them
        e = event(f"u{n % 37}", f"i{n % 101}", START + n * (50 * DAY // 1_200))
        ingest.ingest_records("events", [e])
        sent.append((e["user_id"], e["item_id"], "view", e["timestamp"]))
    # Firehose delivers at least once: one delivery of 50 rows arrives twice.
    first = buffer.buffer_keys(store)[0]
    store.put(first.replace("fake-stream", "fake-stream-redelivered"), store.get(first))
    assert len(buffer.buffer_keys(store)) == 1_201
    report = buffer.compact(store, state)
    assert buffer.buffer_keys(store) == []
    assert [keys.dataset_month(k) for k in parquet_keys(store)] == ["2026-01", "2026-02"]
    assert rows(store) == sorted(sent)
    assert report["rows_out"] == 1_200 and report["duplicates_dropped"] == 1 and report["files_written"] == 2
    # Nothing new: a second run leaves the month files alone.
    before = parquet_keys(store)
    assert buffer.compact(store, state)["files_written"] == 0 and parquet_keys(store) == before


def test_compaction_merges_a_months_uploaded_files_and_new_events_into_one():
    ingest, store, state, _ = shop()
    # Uploads write Parquet directly (not through the stream).
    direct = IngestService(store, state, max_upload_bytes=2**20)
    direct.ingest_records("events", [event("ann", "i1", START)])
    direct.ingest_records("events", [event("bob", "i2", START + 1)])
    buffer.compact(store, state)
    assert len(parquet_keys(store)) == 1
    ingest.ingest_records("events", [event("cid", "i3", START + 2)])
    buffer.compact(store, state)
    (only,) = parquet_keys(store)
    assert only.rsplit("/", 1)[1].startswith(keys.COMPACTED_PREFIX)
    assert [r[0] for r in rows(store)] == ["ann", "bob", "cid"]


def test_the_newest_delivery_of_an_event_wins_at_compaction():
    ingest, store, state, stream = shop()
    ingest.ingest_records("events", [{**event("ann", "i1", START, "rating"), "value": 2}])
    ingest.ingest_records("events", [{**event("ann", "i1", START, "rating"), "value": 5}])
    buffer.compact(store, state)
    table = datasets.read_dataset(store, "interactions")
    assert table.column("value").to_pylist() == [5.0]


def test_erase_removes_a_customer_from_the_buffer_and_compaction_drops_what_firehose_delivers_later():
    ingest, store, state, stream = shop()
    ingest.ingest_records("events", [event("ann", "i1", START), event("bob", "i1", START + 1)])
    ingest.ingest_records("events", [event("ann", "i2", START + 2)])
    # An event of ann accepted before the erase but still in Firehose's own buffer when it runs.
    held: list[bytes] = []
    deliver = stream.put
    stream.put = held.extend  # type: ignore[method-assign]
    ingest.ingest_records("events", [event("ann", "i3", START + 3)])
    from tailor.models.registry import ModelRegistry

    report = EraseService(store, state, ModelRegistry(store, state)).erase("ann")
    assert report["datasets"]["interactions"]["rows_removed"] == 2
    assert [r[0] for r in rows(store)] == ["bob"]
    deliver(held)  # Firehose's interval ends: it lands after the erase
    from tailor.privacy.erase import tombstones

    table = datasets.read_dataset(store, "interactions", erased=tombstones(state))
    assert table.column("user_id").to_pylist() == ["bob"]  # training and profiles read it so
    result = buffer.compact(store, state)
    assert result["erased_dropped"] == 1 and [r[0] for r in rows(store)] == ["bob"]
    assert state.get(keys.DATASET_STATS_PK, "interactions")["rows_stored"] == 1


def test_the_buffer_erase_keeps_gzip_objects_gzip():
    import gzip

    store, state = FakeObjectStore(), FakeStateTable()
    lines = b"".join(buffer.encode(validate_records(SCHEMAS["interactions"], [event("ann", "i1", START),
                                                                             event("bob", "i1", START)]), START))
    key = keys.buffer_prefix("interactions") + "2030/01/01/00/tailor-events-1.gz"
    store.put(key, gzip.compress(lines))
    buffer.erase_user(UserErasure(store, "ann", "2030-01-02T00:00:00Z"), state)
    kept = gzip.decompress(store.get(key)).decode().splitlines()
    assert [json.loads(line)["user_id"] for line in kept] == ["bob"]


def test_a_reader_lists_again_when_compaction_consumed_what_it_listed():
    ingest, store, state, _ = shop()
    ingest.ingest_records("events", [event("ann", "i1", START)])

    original_get, calls = store.get, []

    def get(key):
        if key.startswith(keys.BUFFER_PREFIX) and not calls:
            calls.append(key)
            buffer.compact(store, state)  # runs between the listing and the read
        return original_get(key)

    store.get = get  # type: ignore[method-assign]
    assert rows(store) == [("ann", "i1", "view", START)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(ID_CHARACTERS, min_size=1, max_size=12), st.text(ID_CHARACTERS, min_size=1, max_size=12),
                          st.integers(0, 4_000_000_000_000),
                          st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False))), min_size=1, max_size=20))
def test_streamed_rows_read_back_as_the_rows_parquet_would_hold(raw):
    records = [{"user_id": u, "item_id": i, "timestamp": t, **({} if v is None else {"value": v})}
               for u, i, t, v in raw]
    validated = validate_records(SCHEMAS["interactions"], records)
    store = FakeObjectStore()
    FakeRecordStream(store).put(buffer.encode(validated, 7))
    streamed = buffer.read_buffer(store, buffer.buffer_keys(store))
    direct = datasets.to_table(validated, 7)
    assert streamed.select(direct.column_names).to_pylist() == direct.to_pylist()


def test_stream_calls_respect_firehose_limits():
    many = [b"x" * 10] * (MAX_RECORDS_PER_CALL * 2 + 3)
    assert [len(c) for c in chunks(many)] == [MAX_RECORDS_PER_CALL, MAX_RECORDS_PER_CALL, 3]
    big = [b"x" * (MAX_BYTES_PER_CALL // 3)] * 4
    assert [len(c) for c in chunks(big)] == [3, 1]


class FlakyFirehose:
    """Refuses the first record of each call `refusals` times (throttling), then accepts."""

    def __init__(self, refusals: int):
        self.refusals, self.sent = refusals, []

    def put_record_batch(self, DeliveryStreamName, Records):  # noqa: N803 - boto3's names
        answers = [{"RecordId": "r"} for _ in Records]
        if self.refusals:
            self.refusals -= 1
            answers[0] = {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow down"}
        self.sent.extend(r["Data"] for r, a in zip(Records, answers) if "ErrorCode" not in a)
        return {"FailedPutCount": sum("ErrorCode" in a for a in answers), "RequestResponses": answers}


def test_refused_records_are_sent_again_and_a_persistent_refusal_is_a_503():
    client = FlakyFirehose(refusals=2)
    RecordStream("events", client=client).put([b"a", b"b", b"c"])
    assert sorted(client.sent) == [b"a", b"b", b"c"]
    with pytest.raises(StreamUnavailable) as refused:
        RecordStream("events", client=FlakyFirehose(refusals=10)).put([b"a"])
    assert refused.value.status == 503 and "send the same request again" in refused.value.message


def test_the_template_stream_delivers_where_the_buffer_is_read():
    from pathlib import Path

    from infra.template import load_template

    template = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
    resources = template["Resources"]
    destination = resources["EventStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert destination["Prefix"] == keys.buffer_prefix("interactions")
    ingest_env = resources["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert ingest_env["EVENT_STREAM"] == resources["EventStream"]["Properties"]["DeliveryStreamName"]
    schedule = resources["IngestFunction"]["Properties"]["Events"]["CompactSchedule"]["Properties"]
    assert json.loads(schedule["Input"]) == {"compact_events": True}
