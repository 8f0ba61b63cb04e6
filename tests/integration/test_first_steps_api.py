"""First steps through the real handlers (issue 11): bodies without a JSON Content-Type, one
upload's status by its id, column mappings, lenient optional fields, the training-job list and
a model version's report."""

import json

import pytest
from harness import BUCKET, LambdaContext, api_event, call, load_handler, s3_event

from tailor.bootstrap import object_store, state_table
from tailor.datasets.store import read_dataset

EVENT = {"user_id": "u1", "item_id": "i9", "timestamp": "2026-11-28T09:00:00Z", "event_type": "view"}


def raw_call(method, path, body: str, headers: dict, **kwargs):
    event = api_event(method, path, body, **kwargs)
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    response = load_handler("ingest")(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "application/x-www-form-urlencoded"},
                                     {"content-type": "text/plain"}, {"Content-Type": "application/json"}])
def test_json_bodies_are_read_whatever_the_content_type(aws, headers):
    status, body = raw_call("POST", "/v1/uploads", json.dumps({"dataset": "events", "filename": "r.csv"}), headers)
    assert status == 201, body
    status, body = raw_call("POST", "/v1/events", json.dumps({"events": [EVENT]}), headers)
    assert status == 200 and body["rows_stored"] == 1, body


@pytest.mark.parametrize("path", ["/v1/uploads", "/v1/events", "/v1/training-jobs"])
def test_a_body_that_is_not_json_is_a_400_saying_so(aws, path):
    status, body = raw_call("POST", path, "dataset=events&filename=r.csv",
                            {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400, body
    assert "not valid JSON" in body["error"]["message"]


def _put_and_ingest(aws, key: str, data: bytes) -> dict:
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return load_handler("ingest")(s3_event(key, len(data)), LambdaContext())["ingested"][0]


def test_upload_status_waiting_ingested_with_mapping_and_warnings(aws):
    status, upload = call("ingest", "POST", "/v1/uploads", {
        "dataset": "reviews", "filename": "amazon.csv",
        "columns": {"review_body": "text", "star_rating": "rating", "customer_id": "user_id"}})
    assert status == 201, upload
    assert upload["status_url"] == f"/v1/uploads/{upload['upload_id']}"
    assert upload["key"].split("/")[2] == upload["upload_id"]
    status, waiting = call("ingest", "GET", f"/v1/uploads/{upload['upload_id']}",
                           resource="/v1/uploads/{upload_id}", path_params={"upload_id": upload["upload_id"]})
    assert status == 200 and waiting["status"] == "waiting" and "no file has arrived" in waiting["note"]
    data = ("customer_id,review_body,star_rating,date\n"
            "c1,Très bon café,5.0 out of 5 stars,1704164645000\n"
            "c2,Not for me,one star,1704164646000\n"
            "c3,,4,1704164647000\n").encode("cp1252")
    result = _put_and_ingest(aws, upload["key"], data)
    assert (result["status"], result["rows_stored"], result["rows_rejected"]) == ("stored", 2, 1)
    status, done = call("ingest", "GET", f"/v1/uploads/{upload['upload_id']}",
                        resource="/v1/uploads/{upload_id}", path_params={"upload_id": upload["upload_id"]})
    assert status == 200 and done["status"] == "ingested", done
    assert (done["rows_stored"], done["rows_rejected"]) == (2, 1)
    assert done["columns"] == {"review_body": "text", "star_rating": "rating", "customer_id": "user_id"}
    assert done["warnings"] == {
        "rating: number read from text (such as '5.0 out of 5 stars', '4/5' or '★★★★☆')": 1,
        "rating: not a number; left empty": 1,
        "file is not UTF-8: read as Windows-1252 (Latin-1); lines with non-ASCII characters": 1}
    assert done["reject_samples"][0]["reason"] == "missing text"
    table = read_dataset(object_store(), "reviews")
    assert table.column("text").to_pylist() == ["Très bon café", "Not for me"]
    assert table.column("rating").to_pylist() == [5.0, None]
    assert table.column("user_id").to_pylist() == ["c1", "c2"]
    assert table.column("date").to_pylist() == ["1704164645000", "1704164646000"]  # unmapped: kept as metadata
    # A refused file says so on its status too (the PUT itself always answers 200).
    status, bad = call("ingest", "POST", "/v1/uploads", {"dataset": "reviews", "filename": "x.csv"})
    _put_and_ingest(aws, bad["key"], b"title,stars\na,5\n")
    status, refused = call("ingest", "GET", f"/v1/uploads/{bad['upload_id']}",
                           resource="/v1/uploads/{upload_id}", path_params={"upload_id": bad["upload_id"]})
    assert refused["status"] == "refused" and "missing required column(s) text" in refused["message"]
    # The same bytes again (another upload): duplicate.
    status, again = call("ingest", "POST", "/v1/uploads", {"dataset": "reviews", "filename": "amazon.csv",
                                                           "columns": upload["columns"]})
    _put_and_ingest(aws, again["key"], data)
    assert call("ingest", "GET", f"/v1/uploads/{again['upload_id']}", resource="/v1/uploads/{upload_id}",
                path_params={"upload_id": again["upload_id"]})[1]["status"] == "duplicate"


@pytest.mark.parametrize("upload_id", ["nope", "20260101T000000Z-00000000", "incoming%2Fevents%2Fx"])
def test_unknown_upload_is_a_404(aws, upload_id):
    status, body = call("ingest", "GET", f"/v1/uploads/{upload_id}", resource="/v1/uploads/{upload_id}",
                        path_params={"upload_id": upload_id})
    assert status == 404 and "upload_id that POST /v1/uploads returned" in body["error"]["message"]


@pytest.mark.parametrize("columns,match", [
    ({"customer_id": "customer"}, "unknown field 'customer'"),
    ({"a": "user_id", "b": "user_id"}, "2 columns map to user_id"),
    (["user_id"], "must be an object"),
    ({"a": 3}, "must be an object"),
])
def test_bad_column_mappings_are_422_with_a_clear_message(aws, columns, match):
    status, body = call("ingest", "POST", "/v1/uploads", {"dataset": "events", "filename": "r.csv", "columns": columns})
    assert status == 422 and match in body["error"]["message"], body
    status, body = call("ingest", "POST", "/v1/events", {"events": [EVENT], "columns": columns})
    assert status == 422 and match in body["error"]["message"], body


def test_batches_take_a_column_mapping_and_millisecond_timestamps(aws):
    rows = [{"customer_id": "c1", "product_id": "p1", "date": 1704164645000, "stars": "4/5"},
            {"customer_id": "c2", "product_id": "p2", "date": 1704164646000, "stars": "n/a"}]
    columns = {"customer_id": "user_id", "product_id": "item_id", "date": "timestamp", "stars": "value"}
    status, body = call("ingest", "POST", "/v1/events", {"events": rows, "columns": columns})
    assert status == 200 and body["rows_stored"] == 2, body
    assert body["warnings"]["timestamp: read as Unix milliseconds (every number of the column is in the "
                            "millisecond range)"] == 2
    assert body["warnings"]["value: not a number; left empty"] == 1
    table = read_dataset(object_store(), "interactions")
    assert table.column("value").to_pylist() == [4.0, None]
    # The mapping is part of the batch: the same rows without it are another (refused) batch.
    status, body = call("ingest", "POST", "/v1/events", {"events": rows})
    assert status == 422 and "no record in the batch is valid" in body["error"]["message"]
    status, body = call("ingest", "POST", "/v1/events", {"events": [{**EVENT, "uid": "x"}],
                                                         "columns": {"uid": "user_id"}})
    assert status == 422 and "two columns the name user_id" in body["error"]["message"]


def test_items_take_a_group_id(aws):
    status, body = call("ingest", "POST", "/v1/items", {"items": [
        {"item_id": "shoe-40", "title": "Runner 40", "group_id": "runner"}]})
    assert status == 200 and body["rows_stored"] == 1, body
    status, body = call("ingest", "POST", "/v1/items", {"items": [
        {"item_id": "shoe-41", "title": "Runner 41", "family": "runner"}], "columns": {"family": "group_id"}})
    assert status == 200 and body["rows_stored"] == 1, body
    assert read_dataset(object_store(), "items").column("group_id").to_pylist() == ["runner", "runner"]


def test_training_jobs_are_listed_newest_first_in_pages(aws, monkeypatch):
    from tailor import bootstrap

    started = []
    monkeypatch.setattr(bootstrap.training_jobs(), "invoke", started.append)
    monkeypatch.setattr(bootstrap.training_jobs(), "has_data", lambda dataset: True)
    ids = [call("ingest", "POST", "/v1/training-jobs", {"models": ["sentiment"]})[1]["job_id"] for _ in range(5)]
    assert len(started) == 5
    seen, token = [], None
    while True:
        query = {"limit": "2", **({"next_token": token} if token else {})}
        status, page = call("ingest", "GET", "/v1/training-jobs", query=query)
        assert status == 200, page
        assert len(page["jobs"]) <= 2 and all("progress" not in job for job in page["jobs"])
        seen += [job["job_id"] for job in page["jobs"]]
        token = page.get("next_token")
        if not token:
            break
    assert seen == sorted(ids, reverse=True)  # job ids start with their creation time
    assert {job["status"] for job in call("ingest", "GET", "/v1/training-jobs")[1]["jobs"]} == {"QUEUED"}
    for query in ({"limit": "0"}, {"limit": "101"}, {"next_token": "garbage!"}):
        status, body = call("ingest", "GET", "/v1/training-jobs", query=query)
        assert status == 422 and body["error"]["message"], (query, body)


def test_a_model_versions_report_is_served_with_plot_links(aws):
    from tailor.bootstrap import model_registry

    model_registry().save_version("sentiment", "v1", {"weights.npz": b"x"}, {"accuracy": 0.9},
                                  {"report.json": b'{"accuracy": 0.9}', "report.md": b"# Report\n",
                                   "calibration.png": b"\x89PNG"})
    path = "/v1/models/sentiment/versions/v1/report"
    resource = "/v1/models/{model}/versions/{version}/report"
    status, body = call("ingest", "GET", path, resource=resource, path_params={"model": "sentiment", "version": "v1"})
    assert status == 200, body
    assert body["report"] == {"accuracy": 0.9} and body["markdown"] == "# Report\n"
    assert [p["name"] for p in body["plots"]] == ["calibration.png"]
    assert "reports/sentiment/v1/calibration.png" in body["plots"][0]["url"]
    assert aws.s3.get_object(Bucket=BUCKET, Key="reports/sentiment/v1/calibration.png")["Body"].read() == b"\x89PNG"
    for model, version in (("sentiment", "v2"), ("nope", "v1")):
        status, body = call("ingest", "GET", f"/v1/models/{model}/versions/{version}/report", resource=resource,
                            path_params={"model": model, "version": version})
        assert status == 404 and body["error"]["message"]
    assert state_table().get("MODEL#sentiment", "VERSION#v1")
