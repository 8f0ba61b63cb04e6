"""Ingest over HTTP only, against the local stack — what a new user does with curl."""

import pytest

from infra.client import TailorClient
from infra.datagen import PRESETS, generate


@pytest.fixture(scope="module")
def client(local_stack):
    return TailorClient(local_stack.url)


def test_csv_with_ten_good_and_three_broken_rows(client, tmp_path):
    rows = [f"e2e-u{i},e2e-i{i},2025-06-0{1 + i % 9}T12:00:00Z,view,\n" for i in range(10)]
    body = ("user_id,item_id,timestamp,event_type,value\n" + "".join(rows[:4])
            + ",e2e-i1,1750000000,view,\n" + "e2e-u1,e2e-i1,not-a-time,view,\n").encode()
    body += b"e2e-u2,e2e-\xe9t\xe9,1750000000,view,\n" + "".join(rows[4:]).encode()
    path = tmp_path / "ten-good-three-bad.csv"
    path.write_bytes(body)
    before = client.dataset("interactions")
    entry = client.wait_for_ingest(client.upload("interactions", path), "interactions")
    # The Latin-1 "été" row is kept: the file has no UTF-8 at all, so it is read as Windows-1252.
    assert (entry["status"], entry["rows_stored"], entry["rows_rejected"]) == ("stored", 11, 2)
    assert list(entry["warnings"].values()) == [1] and "Windows-1252" in next(iter(entry["warnings"]))
    reasons = [r["reason"] for r in entry["reject_samples"]]
    assert reasons[0] == "missing user_id"
    assert "unparseable timestamp" in reasons[1]
    after = client.dataset("interactions")
    assert after["rows_stored"] - before["rows_stored"] == 11
    assert after["rows_rejected"] - before["rows_rejected"] == 2
    # Uploading the very same file again stores nothing new.
    again = client.wait_for_ingest(client.upload("interactions", path), "interactions")
    assert again["status"] == "duplicate"
    assert client.dataset("interactions")["rows_stored"] == after["rows_stored"]


def test_generated_shop_data_is_stored_row_for_row(client, tmp_path):
    files = generate(tmp_path, seed=3, **PRESETS["tiny"])
    for dataset in ("items", "users", "reviews"):
        expected = sum(1 for _ in open(files[dataset], encoding="utf-8")) - 1
        before = client.dataset(dataset)["rows_stored"]
        entry = client.wait_for_ingest(client.upload(dataset, files[dataset]), dataset)
        assert entry["rows_rejected"] == 0, entry.get("reject_samples")
        assert client.dataset(dataset)["rows_stored"] - before == expected


@pytest.mark.parametrize("raw,status", [(b"{not json", 400), (b"", 400)])
def test_malformed_bodies(client, raw, status):
    got, body = client.request("POST", "/v1/events", raw=raw)
    assert got == status and body["error"]["message"]


def test_batch_limit_and_clear_errors(client):
    events = [{"user_id": "u", "item_id": "i", "timestamp": 1700000000 + n} for n in range(501)]
    status, body = client.request("POST", "/v1/events", {"events": events})
    assert status == 413 and "at most 500" in body["error"]["message"]
    status, body = client.request("POST", "/v1/events", {"events": events[:500]})
    assert status == 200 and body["rows_stored"] == 500


def test_unknown_route_and_wrong_method(client):
    assert client.request("GET", "/v1/nope")[0] == 404
    assert client.request("DELETE", "/v1/datasets")[0] in (404, 405)
