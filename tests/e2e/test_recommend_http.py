"""Recommendations over HTTP against the local stack: upload, train asynchronously, ask."""

import csv

import pytest

from infra.client import TailorClient
from infra.datagen import PRESETS, generate


@pytest.fixture(scope="module")
def trained(local_stack, tmp_path_factory):
    client = TailorClient(local_stack.url)
    files = generate(tmp_path_factory.mktemp("shop"), seed=0, **PRESETS["demo"])
    for dataset in ("items", "interactions"):
        client.wait_for_ingest(client.upload(dataset, files[dataset]), dataset)
    job = client.call("POST", "/v1/training-jobs", {"models": ["recommender"]})
    job = client.wait_for_job(job["job_id"], timeout=600)
    assert job["status"] == "SUCCEEDED", job.get("error")
    assert job["results"]["recommender"]["promoted"], job["results"]["recommender"]["decision"]
    with open(files["interactions"], encoding="utf-8") as handle:
        user = next(csv.DictReader(handle))["user_id"]
    return client, user


def test_recommendations_for_a_known_user(trained):
    client, user = trained
    body = client.call("GET", f"/v1/users/{user}/recommendations?k=10")
    assert body["strategy"] == "personalized" and len(body["items"]) == 10
    assert all(item["reason"].startswith("because you chose") for item in body["items"])


def test_unknown_user_gets_popular_fallback_and_bad_k_is_422(trained):
    client, user = trained
    body = client.call("GET", "/v1/users/never-seen/recommendations?k=5")
    assert body["strategy"] == "popular" and len(body["items"]) == 5
    for k in (0, 1000):
        assert client.request("GET", f"/v1/users/{user}/recommendations?k={k}")[0] == 422
    assert client.request("GET", "/v1/items/no-such-item/similar")[0] == 404
