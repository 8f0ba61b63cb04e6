"""Ingest through the real handler: JSON batches, uploaded files via S3 events, counts, rejects."""

import gzip
import json

import pytest
from harness import BUCKET, LambdaContext, call, load_handler, s3_event

from tailor.bootstrap import object_store
from tailor.datasets.store import read_dataset


def upload(aws, key: str, body: bytes) -> dict:
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return load_handler("ingest")(s3_event(key, len(body)), LambdaContext())["ingested"][0]


def datasets() -> dict:
    status, body = call("ingest", "GET", "/v1/datasets")
    assert status == 200
    return {d["name"]: d for d in body["datasets"]}


def test_batch_of_events_is_stored_once_with_rejects_reported(aws):
    events = [{"user_id": "u1", "item_id": "i1", "timestamp": "2024-03-01T10:00:00Z", "event_type": "view"},
              {"user_id": "u2", "item_id": "i2", "timestamp": 1709287200, "value": 4.5},
              {"item_id": "i3", "timestamp": 1709287200}]
    status, body = call("ingest", "POST", "/v1/events", {"events": events})
    assert status == 200, body
    assert (body["rows_stored"], body["rows_rejected"]) == (2, 1)
    assert body["reject_samples"][0] == {"row": 3, "reason": "missing user_id",
                                         "record": '{"item_id": "i3", "timestamp": 1709287200}'}
    again = call("ingest", "POST", "/v1/events", {"events": events})[1]
    assert again["status"] == "duplicate"
    stats = datasets()["interactions"]
    assert (stats["rows_stored"], stats["rows_rejected"]) == (2, 1)
    table = read_dataset(object_store(), "interactions")
    assert sorted(table.column("user_id").to_pylist()) == ["u1", "u2"]
    assert table.column("event_type").to_pylist().count("interaction") == 1


@pytest.mark.parametrize("body,status,code", [
    ("{not json", 400, "bad_request"),
    ({"events": [{"user_id": "u", "item_id": "i", "timestamp": 1}] * 501}, 413, "payload_too_large"),
    ({"events": []}, 422, "invalid_request"),
    ({"events": "nope"}, 422, "invalid_request"),
    ({"events": [{"user_id": "u"}]}, 422, "invalid_request"),
])
def test_bad_batches_get_clear_errors(aws, body, status, code):
    got_status, got = call("ingest", "POST", "/v1/events", body)
    assert (got_status, got["error"]["code"]) == (status, code)
    assert got["error"]["message"]
    assert datasets()["interactions"]["rows_stored"] == 0


def test_uploaded_csv_with_space_in_key_is_ingested_and_rejects_written(aws):
    csv = ("user_id,item_id,timestamp,value\n" + "".join(f"u{i},i{i},2024-01-01T00:00:0{i}Z,{i}\n" for i in range(10))
           + ",i1,1700000000,1\nu1,i1,someday,1\n").encode() + b"u1,i\xff,1700000000,1\n"
    result = upload(aws, "incoming/interactions/20240101-x/my ratings.csv", csv)
    # The one non-ASCII byte is not UTF-8 and nothing in the file is: read as Windows-1252 ("iÿ").
    assert (result["status"], result["rows_stored"], result["rows_rejected"]) == ("stored", 11, 2)
    assert result["warnings"] == {"file is not UTF-8: read as Windows-1252 (Latin-1); lines with non-ASCII characters": 1}
    rejects = aws.s3.get_object(Bucket=BUCKET, Key=result["rejects_key"])["Body"].read().decode().splitlines()
    assert [json.loads(line)["row"] for line in rejects] == [12, 13]
    assert "i\u00ff" in read_dataset(object_store(), "interactions").column("item_id").to_pylist()
    # The same bytes uploaded again under another name are recognised and not stored twice.
    assert upload(aws, "incoming/events/again.csv", csv)["status"] == "duplicate"
    stats = datasets()["interactions"]
    assert (stats["rows_stored"], stats["rows_rejected"]) == (11, 2)
    assert stats["recent_ingests"][0]["status"] == "duplicate"


def test_gzip_jsonl_items_with_chinese_and_emoji_round_trip(aws):
    items = [{"item_id": "i1", "title": "绿茶 Green tea 🍵", "categories": "Food|Tea"},
             {"item_id": "i2", "title": "Kettle", "description": "1.7 l", "colour": "red"}]
    body = gzip.compress("\n".join(json.dumps(i, ensure_ascii=False) for i in items).encode())
    assert upload(aws, "incoming/items/catalog.jsonl.gz", body)["rows_stored"] == 2
    table = read_dataset(object_store(), "items")
    assert table.column("title").to_pylist() == ["绿茶 Green tea 🍵", "Kettle"]
    assert table.column("colour").to_pylist() == [None, "red"]


def test_newer_item_rows_replace_older_ones(aws):
    call("ingest", "POST", "/v1/items", {"items": [{"item_id": "i1", "title": "Old"}]})
    call("ingest", "POST", "/v1/items", {"items": [{"item_id": "i1", "title": "New"}, {"item_id": "i2", "title": "B"}]})
    table = read_dataset(object_store(), "items")
    assert dict(zip(table.column("item_id").to_pylist(), table.column("title").to_pylist())) == {"i1": "New", "i2": "B"}


def test_newer_user_and_review_rows_replace_older_ones(aws):
    # Newest row wins per key (user_id, review_id), across batches and within one batch.
    call("ingest", "POST", "/v1/users", {"users": [{"user_id": "u1", "country": "FR"}, {"user_id": "u2", "country": "DE"}]})
    call("ingest", "POST", "/v1/users", {"users": [{"user_id": "u1", "country": "ES"}, {"user_id": "u1", "country": "IT"}]})
    users = read_dataset(object_store(), "users")
    assert dict(zip(users.column("user_id").to_pylist(), users.column("country").to_pylist())) == {"u1": "IT", "u2": "DE"}
    review = {"review_id": "r1", "user_id": "u1", "item_id": "i1", "timestamp": "2030-01-01T00:00:00Z"}
    call("ingest", "POST", "/v1/reviews", {"reviews": [{**review, "text": "first draft", "rating": 2}]})
    call("ingest", "POST", "/v1/reviews", {"reviews": [{**review, "text": "changed my mind, great", "rating": 5},
                                                       {**review, "review_id": "r2", "text": "fine", "rating": 4}]})
    reviews = read_dataset(object_store(), "reviews")
    by_id = {r["review_id"]: (r["text"], r["rating"]) for r in reviews.to_pylist()}
    assert by_id == {"r1": ("changed my mind, great", 5), "r2": ("fine", 4)}


def test_oversized_and_empty_files_are_refused_with_a_message(aws):
    big = b"user_id,item_id,timestamp\n" + b"u,i,1\n" * (6 * 2**20 // 6)
    assert "limit is 5 MB" in upload(aws, "incoming/interactions/big.csv", big)["message"]
    assert "empty" in upload(aws, "incoming/interactions/empty.csv", b"")["message"]
    stats = datasets()["interactions"]
    assert stats["rows_stored"] == 0 and "empty" in stats["recent_ingests"][0]["message"]


def test_upload_url_names_the_dataset_folder_and_refuses_bad_requests(aws):
    status, body = call("ingest", "POST", "/v1/uploads", {"dataset": "events", "filename": "../ratings 2024.csv"})
    assert status == 201
    assert body["key"].startswith("incoming/interactions/") and body["key"].endswith("/ratings_2024.csv")
    assert body["headers"] == {"Content-Type": "application/octet-stream"}
    assert call("ingest", "POST", "/v1/uploads", {"dataset": "orders", "filename": "a.csv"})[0] == 422
    assert call("ingest", "POST", "/v1/uploads", {"dataset": "items", "filename": "a.exe"})[0] == 422
    assert call("ingest", "POST", "/v1/uploads", {"dataset": "items", "filename": "a.csv",
                                                  "size_bytes": 6 * 2**20})[0] == 413


def test_unknown_route_is_a_json_404(aws):
    status, body = call("ingest", "GET", "/v1/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"
