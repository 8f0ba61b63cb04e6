"""Privacy erase end to end (moto, versioned bucket): after DELETE /v1/users/{id} no object
version, table item or later export holds the id; re-sent old files do not bring the user back;
a returning customer's new events are stored; the next training data excludes the user."""

import csv
import gzip
import io
import json
from datetime import UTC, datetime, timedelta

import boto3
import numpy as np
import pytest
from harness import BUCKET, TABLE, LambdaContext, call, load_handler, s3_event

from infra.datagen import PRESETS, generate
from tailor import bootstrap
from tailor.customers.service import ProfileService, ProfileStore
from tailor.models.cache import ModelCache
from tailor.privacy.erase import user_hash
from tailor.recommend.service import load_model
from tailor.sentiment.service import SentimentService
from tailor.training.recommender.job import load_training_data

TARGET = "zz-erase-target-7f3a"  # distinctive: no other id contains it


class StubScorer:
    """Sentiment results without training a sentiment model (the erase only needs the rows)."""

    def score(self, texts):
        return [{"label": "POSITIVE", "score": 0.5, "language": "en",
                 "probabilities": {"positive": 0.75, "negative": 0.25, "neutral": 0.0}} for _ in texts]


def upload(aws, key, body):
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return load_handler("ingest")(s3_event(key, len(body)), LambdaContext())["ingested"][0]


def decoded(body: bytes) -> str:
    """Everything readable in a stored object: gzip, Parquet and npz contents included."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    if body[:4] == b"PAR1":
        import pyarrow.parquet as pq

        return json.dumps(pq.read_table(io.BytesIO(body)).to_pylist(), default=str)
    if body[:2] == b"PK":  # npz
        with np.load(io.BytesIO(body), allow_pickle=False) as npz:
            return " ".join(str(npz[name].tolist()) for name in npz.files if npz[name].dtype.kind in "US")
    return body.decode("utf-8", "replace")


def holders_of(aws, needle: str) -> list[str]:
    found = []
    listing = aws.s3.list_object_versions(Bucket=BUCKET)
    assert not listing.get("IsTruncated")
    for version in listing.get("Versions", []):
        body = aws.s3.get_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
        if needle in decoded(body) or needle.encode() in body:
            found.append(f"s3://{version['Key']}?versionId={version['VersionId']}")
    table = boto3.resource("dynamodb").Table(TABLE)
    page = table.scan()
    items = page["Items"]
    while "LastEvaluatedKey" in page:
        page = table.scan(ExclusiveStartKey=page["LastEvaluatedKey"])
        items += page["Items"]
    found += [f"item {i['pk']}/{i['sk']}" for i in items if needle in json.dumps(i, default=str)]
    return found


def rows_of(path):
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def shop(aws, tmp_path, monkeypatch):
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    files = generate(tmp_path, seed=0, **PRESETS["tiny"], reviews=30)
    # The erased customer: one who wrote a review, renamed so that no other id contains theirs.
    replaced = next(r["user_id"] for r in rows_of(files["reviews"]) if r["user_id"] != "u00001")
    originals = {}
    for name, path in files.items():
        path.write_text(path.read_text(encoding="utf-8").replace(replaced, TARGET), encoding="utf-8")
        originals[name] = path.read_bytes()
    for name in ("items", "users"):
        assert upload(aws, f"incoming/{name}/{name}.csv", originals[name])["status"] == "stored"
    gz = upload(aws, "incoming/interactions/2024/interactions.csv.gz", gzip.compress(originals["interactions"], mtime=0))
    assert gz["status"] == "stored"
    reviews = rows_of(files["reviews"])
    assert any(r["user_id"] == TARGET for r in reviews)
    status, body = call("ingest", "POST", "/v1/reviews", {"reviews": reviews})
    assert status == 200 and body["rows_stored"] == len(reviews), body
    bad = call("ingest", "POST", "/v1/events", {"events": [{"user_id": TARGET, "item_id": "i0001", "timestamp": "soon"},
                                                  {"user_id": "u00001", "item_id": "i0001", "timestamp": 1}]})
    assert bad[1].get("rows_rejected") == 1, bad  # a rejects/ line and an ingest-log sample with the id
    # A raw upload that could not be ingested stays under incoming/ and mentions the user.
    upload(aws, "incoming/users/broken.csv", f"no_user_column\n{TARGET}\n".encode())

    store, state = bootstrap.object_store(), bootstrap.state_table()
    sentiment = SentimentService(store, state, models=None)
    for key in store.keys("datasets/reviews/"):
        sentiment.score_file(key, StubScorer(), "stub")
    sentiment.refresh_summaries()

    sent = []
    monkeypatch.setattr(bootstrap.training_jobs(), "invoke", sent.append)
    assert call("ingest", "POST", "/v1/training-jobs", {"models": ["recommender"]})[0] == 202
    assert load_handler("train")(sent[0], LambdaContext())["status"] == "SUCCEEDED"
    registry = bootstrap.model_registry()
    if registry.current("recommender") is None:  # tiny data may not pass the gate: serve it anyway
        trained = bootstrap.state_table().query("MODEL#recommender")[0]["version"]
        registry.promote("recommender", trained)
        from tailor.customers.service import build_and_save

        build_and_save(store, state, load_model(registry, trained).recommender, trained, lambda _: None)
    current = registry.current("recommender")["version"]
    # An older model version, and a noncurrent S3 version of the current weights.
    for name in ("recommender.npz", "recommender.json", "catalog.json"):
        body = store.get(f"models/recommender/{current}/{name}")
        store.put(f"models/recommender/00000000T000000Z-old/{name}", body)
    store.put(f"models/recommender/{current}/recommender.npz", store.get(f"models/recommender/{current}/recommender.npz"))

    status, exported = call("profiles", "POST", "/v1/audiences",
                            {"item_id": "i0001", "size": 100, "include_engaged": True, "export": True})
    assert status == 200, exported
    return {"files": files, "originals": originals, "version": current}


def recommendations(user_id):
    return call("recommend", "GET", f"/v1/users/{user_id}/recommendations",
                resource="/v1/users/{user_id}/recommendations", path_params={"user_id": user_id})


def rankings(user_id):
    return call("recommend", "POST", f"/v1/users/{user_id}/rankings", {"item_ids": ["i0001", "i0002", "i0003"]},
                resource="/v1/users/{user_id}/rankings", path_params={"user_id": user_id})


def erase(user_id):
    return call("profiles", "DELETE", f"/v1/users/{user_id}", resource="/v1/users/{user_id}",
                path_params={"user_id": user_id})


def test_erase_leaves_no_trace_and_old_files_do_not_bring_the_user_back(aws, shop):
    before = holders_of(aws, TARGET)
    assert any("datasets/interactions" in h for h in before) and any("models/recommender" in h for h in before)
    assert any(h.startswith("item PROFILE#") for h in before) and any("exports/" in h for h in before)
    assert any("results/sentiment" in h for h in before) and any("SENTIMENT#user#" in h for h in before)
    assert recommendations(TARGET)[1]["strategy"] == "personalized"
    assert rankings(TARGET)[1]["strategy"] == "personalized"
    # Another warm container answering audiences, its model cache loaded and far from expiry.
    store, state, registry = bootstrap.object_store(), bootstrap.state_table(), bootstrap.model_registry()
    warm = ProfileService(ProfileStore(state), ModelCache(registry, "recommender", load_model, ttl=3600),
                          store, state)
    assert TARGET in json.dumps(warm.audience(item_id="i0001", category=None, size=100, include_engaged=True)[0])
    stats_before = {d["name"]: d for d in call("ingest", "GET", "/v1/datasets")[1]["datasets"]}

    status, report = erase(TARGET)
    assert status == 200, report
    assert report["datasets"]["interactions"]["rows_removed"] > 0
    assert report["datasets"]["users"]["rows_removed"] == 1
    assert report["models"]["versions_rewritten"] == 2 and report["models"]["pointer_revision"] == 1
    assert holders_of(aws, TARGET) == []  # every object version and every table item

    stats = {d["name"]: d for d in call("ingest", "GET", "/v1/datasets")[1]["datasets"]}
    for name in ("interactions", "users", "reviews"):
        assert stats[name]["rows_stored"] == stats_before[name]["rows_stored"] - report["datasets"][name]["rows_removed"]
    tombstone = bootstrap.state_table().get("ERASED", user_hash(TARGET))
    assert tombstone and tombstone["erased_at"] == report["erased_at"]

    # What a client sees now.
    profile = call("profiles", "GET", f"/v1/users/{TARGET}/profile", resource="/v1/users/{user_id}/profile",
                   path_params={"user_id": TARGET})
    assert profile[0] == 404
    # Warm containers (recommendations and rankings share one cache, audiences another) see the
    # erase on their very next request, well inside the 60 s model cache: the serving stamp.
    assert recommendations(TARGET)[1]["strategy"] == "popular"
    assert rankings(TARGET)[1]["strategy"] != "personalized"
    assert TARGET not in json.dumps(warm.audience(item_id="i0001", category=None, size=100, include_engaged=True)[0])
    status, audience = call("profiles", "POST", "/v1/audiences",
                            {"item_id": "i0001", "size": 100, "include_engaged": True, "export": True})
    assert status == 200 and TARGET not in json.dumps(audience)
    assert TARGET.encode() not in bootstrap.object_store().get(audience["export_key"])
    served = load_model(bootstrap.model_registry(), shop["version"]).recommender
    assert not served.has_user(TARGET) and served.has_user("u00001")
    segments = call("profiles", "GET", "/v1/segments")[1]
    assert TARGET not in json.dumps(segments)

    # Erasing twice is safe: nothing is stored any more.
    status, again = erase(TARGET)
    assert status == 404 and "nothing is stored" in again["error"]["message"]
    assert bootstrap.state_table().get("ERASED", user_hash(TARGET))["erased_at"] == report["erased_at"]

    # Re-sending the very same upload stores nothing again; the same history in other bytes
    # (here: not compressed) has the user's rows refused, without their content, every row counted.
    resent = upload(aws, "incoming/interactions/resend.csv.gz", gzip.compress(shop["originals"]["interactions"], mtime=0))
    assert resent["status"] == "duplicate"
    lines = shop["originals"]["interactions"].decode().splitlines()[1:]
    mine = sum(line.startswith(TARGET + ",") for line in lines)
    result = upload(aws, "incoming/interactions/old-export.csv", shop["originals"]["interactions"])
    assert mine and (result["rows_rejected"], result["rows_stored"]) == (mine, len(lines) - mine)
    reasons = {r["reason"] for r in result["reject_samples"]}
    assert reasons == {f"user erased by a privacy request on {report['erased_at'][:10]}"}
    assert all(r["record"] == "" for r in result["reject_samples"])
    users = upload(aws, "incoming/users/old-users.csv", shop["originals"]["users"] + b"\n")
    assert users["rows_rejected"] == 1
    assert holders_of(aws, TARGET) == []

    interactions, _ = load_training_data(bootstrap.object_store())
    assert TARGET not in set(interactions.user_ids.tolist()) and "u00001" in set(interactions.user_ids.tolist())

    # A returning customer: events dated after the erase are stored.
    later = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    status, back = call("ingest", "POST", "/v1/events", {"events": [{"user_id": TARGET, "item_id": "i0002",
                                                                     "timestamp": later}]})
    assert status == 200 and back["rows_stored"] == 1, back
    interactions, _ = load_training_data(bootstrap.object_store())
    assert list(interactions.user_ids).count(TARGET) == 1


def test_erasing_an_unknown_user_is_404_and_leaves_no_tombstone(aws):
    status, body = erase("nobody-like-this")
    assert status == 404 and "nothing is stored" in body["error"]["message"]
    assert bootstrap.state_table().get("ERASED", user_hash("nobody-like-this")) is None
