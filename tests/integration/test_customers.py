"""Profiles, segments and audiences through the handlers (moto): built by the recommender
training, kept fresh by ingest, audiences ranked by the model and exported as CSV."""

import csv
import io
import urllib.parse

import boto3
import pytest
from harness import BUCKET, LambdaContext, call, fresh_account, load_handler

from infra.datagen import PRESETS, generate
from tailor import bootstrap


def _rows(path):
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A demo shop ingested through the API and one recommender training (the slow part)."""
    with pytest.MonkeyPatch.context() as monkeypatch, fresh_account(monkeypatch):
        monkeypatch.setenv("EXPORT_FUNCTION_NAME", "tailor-test-profiles")
        bootstrap.reset()
        sent = []
        monkeypatch.setattr(bootstrap.training_jobs(), "invoke", sent.append)
        files = generate(tmp_path_factory.mktemp("shop"), seed=0, **PRESETS["demo"])
        data = {name: _rows(files[name]) for name in ("items", "users", "interactions")}
        for dataset in data:  # as bulk files: the S3-event path, one batch per file
            key = f"incoming/{dataset}/{files[dataset].name}"
            boto3.client("s3").upload_file(str(files[dataset]), BUCKET, key)
            assert bootstrap.ingest_service().ingest_object(key).rows_stored == len(data[dataset])
        status, queued = call("ingest", "POST", "/v1/training-jobs", {"models": ["recommender"]})
        assert status == 202
        assert load_handler("train")(sent[0], LambdaContext())["status"] == "SUCCEEDED"
        exports = []
        monkeypatch.setattr(bootstrap.profile_service(), "invoke_export", exports.append)
        yield data, queued["job_id"], exports


def profile(user_id):
    return call("profiles", "GET", f"/v1/users/{user_id}/profile", resource="/v1/users/{user_id}/profile",
                path_params={"user_id": user_id})


def audience(body):
    return call("profiles", "POST", "/v1/audiences", body)


def test_profiles_function_answers_503_before_any_training(aws):
    # First in the module: the module's shop (another moto account) does not exist yet.
    assert call("profiles", "GET", "/v1/segments")[0] == 503
    status, body = audience({"category": "Books", "size": 5})
    assert status == 503 and "train" in body["error"]["message"]


def test_profile_has_activity_categories_attributes_and_segment(shop):
    data, _, _ = shop
    user = data["interactions"][0]["user_id"]
    mine = [r for r in data["interactions"] if r["user_id"] == user]
    status, body = profile(user)
    assert status == 200, body
    activity = body["activity"]
    assert activity["events"] == len(mine)
    assert sum(activity["by_event_type"].values()) == len(mine)
    assert activity["distinct_items"] == len({r["item_id"] for r in mine})
    declared = next(r for r in data["users"] if r["user_id"] == user)
    assert body["attributes"]["gender"] == declared["gender"]
    assert body["top_categories"] and all(c["category"] and c["affinity"] is not None for c in body["top_categories"])
    assert body["segment"]["segment_id"] and body["segment"]["name"]
    assert profile("nobody-at-all")[0] == 404


def test_new_events_update_the_profile_before_the_next_training(shop):
    data, _, _ = shop
    user = data["interactions"][1]["user_id"]
    before = profile(user)[1]["activity"]
    item = data["items"][0]["item_id"]
    status, _ = call("ingest", "POST", "/v1/events", {"events": [
        {"user_id": user, "item_id": item, "timestamp": "2030-01-02T03:04:05Z", "event_type": "purchase"},
        {"user_id": "brand-new-customer", "item_id": item, "timestamp": "2030-01-02T03:04:05Z"}]})
    assert status == 200
    after = profile(user)[1]["activity"]
    assert after["events"] == before["events"] + 1
    assert after["by_event_type"]["purchase"] == before["by_event_type"].get("purchase", 0) + 1
    assert after["last_seen"] == "2030-01-02T03:04:05Z"
    status, newcomer = profile("brand-new-customer")
    assert status == 200 and newcomer["activity"]["events"] == 1 and newcomer["segment"] is None
    assert "next training" in newcomer["note"]


def test_segments_cover_every_user_with_descriptions(shop):
    status, body = call("profiles", "GET", "/v1/segments")
    assert status == 200, body
    segments = body["segments"]
    assert 3 <= len(segments) <= 20
    assert sum(s["size"] for s in segments) == body["users"]
    assert all(s["name"] and s["description"] for s in segments)
    assert body["criterion"]["name"]
    first = segments[0]["segment_id"]
    status, detail = call("profiles", "GET", f"/v1/segments/{first}", resource="/v1/segments/{segment_id}",
                          path_params={"segment_id": first})
    assert status == 200 and detail["statistics"] and detail["sample_members"]
    assert call("profiles", "GET", "/v1/segments/nope", resource="/v1/segments/{segment_id}",
                path_params={"segment_id": "nope"})[0] == 404


def test_item_audience_excludes_who_already_engaged(shop):
    data, _, _ = shop
    item = data["interactions"][0]["item_id"]
    engaged = {r["user_id"] for r in data["interactions"] if r["item_id"] == item}
    status, body = audience({"item_id": item, "size": 50})
    assert status == 200, body
    users = [u["user_id"] for u in body["users"]]
    assert len(users) == 50 and not set(users) & engaged
    scores = [u["score"] for u in body["users"]]
    assert scores == sorted(scores, reverse=True)
    status, body = audience({"item_id": item, "size": 50, "include_engaged": True})
    assert status == 200 and set(u["user_id"] for u in body["users"]) & engaged


def test_category_audience_and_csv_export(shop):
    data, _, _ = shop
    category = data["items"][0]["categories"].split("|")[0]
    status, body = audience({"category": category, "size": 20, "export": True})
    assert status == 200, body
    assert len(body["users"]) == 20 and body["export_key"].startswith("exports/audiences/")
    query = urllib.parse.urlparse(body["export_url"]).query
    assert "Signature" in query or "X-Amz-Signature" in query
    exported = boto3.client("s3").get_object(Bucket=BUCKET, Key=body["export_key"])["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [r["user_id"] for r in rows] == [u["user_id"] for u in body["users"]]


def test_large_audience_is_exported_asynchronously(shop):
    data, _, exports = shop
    category = data["items"][0]["categories"].split("|")[0]
    status, job = audience({"category": category, "size": 50_000, "include_engaged": True})
    assert status == 202, job
    assert job["status"] == "QUEUED" and exports[-1] == {"audience_export": {"job_id": job["job_id"]}}
    result = load_handler("profiles")(exports[-1], LambdaContext())
    assert result["status"] == "SUCCEEDED"
    status, done = call("profiles", "GET", f"/v1/audiences/{job['job_id']}", resource="/v1/audiences/{job_id}",
                        path_params={"job_id": job["job_id"]})
    assert status == 200 and done["status"] == "SUCCEEDED" and done["export_url"]
    exported = boto3.client("s3").get_object(Bucket=BUCKET, Key=done["export_key"])["Body"].read().decode()
    modelled = {r["user_id"] for r in data["interactions"]}
    assert len(exported.strip().splitlines()) - 1 == done["rows"] == len(modelled)


@pytest.mark.parametrize("body, status", [
    ({"item_id": "x", "size": 0}, 422),
    ({"item_id": "x", "size": 100_001}, 422),
    ({"size": 10}, 422),
    ({"item_id": "x", "category": "y", "size": 10}, 422),
    ({"item_id": "no-such-item", "size": 10}, 404),
    ({"category": "No Such Category", "size": 10}, 404),
    ({"item_id": "x", "size": "many"}, 422),
    ("{not json", 400),
])
def test_audience_bad_input(shop, body, status):
    answer_status, answer = audience(body)
    assert answer_status == status, answer
    assert answer["error"]["message"]


def test_unknown_export_job_is_404(shop):
    assert call("profiles", "GET", "/v1/audiences/aud-nope", resource="/v1/audiences/{job_id}",
                path_params={"job_id": "aud-nope"})[0] == 404
