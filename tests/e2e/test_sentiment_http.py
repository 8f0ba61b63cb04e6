"""Sentiment over HTTP against the local stack: upload reviews, train asynchronously, score, summarise."""

import csv
from collections import Counter

import pytest

from infra.client import TailorClient
from infra.datagen import PRESETS, generate


@pytest.fixture(scope="module")
def trained(local_stack, tmp_path_factory):
    client = TailorClient(local_stack.url)
    files = generate(tmp_path_factory.mktemp("shop"), seed=5,
                     **{**PRESETS["small"], "interactions": 30_000, "reviews": 700})
    client.wait_for_ingest(client.upload("reviews", files["reviews"]), "reviews")
    status, job = client.request("POST", "/v1/training-jobs", {"models": ["sentiment"]})
    assert status == 202 and job["status"] == "QUEUED"
    job = client.wait_for_job(job["job_id"], timeout=600)
    assert job["status"] == "SUCCEEDED", job.get("error")
    with open(files["reviews"], encoding="utf-8") as handle:
        reviews = list(csv.DictReader(handle))
    return client, job, reviews


def test_training_job_reports_and_promotes(trained):
    client, job, _ = trained
    result = job["results"]["sentiment"]
    assert result["promoted"] and result["metrics"]["accuracy"] > result["metrics"]["majority_baseline_accuracy"]
    models = {m["model"]: m for m in client.call("GET", "/v1/models")["models"]}
    assert models["sentiment"]["current_version"] == result["version"]


def test_scoring_english_chinese_and_empty_text(trained):
    client, job, _ = trained
    texts = ["Excellent quality, I love it", "Terrible, it broke after a day", "非常好，很满意", "   "]
    body = client.call("POST", "/v1/sentiment", {"texts": texts})
    results = body["results"]
    assert body["model_version"] == job["results"]["sentiment"]["version"]
    assert results[0]["score"] > 0 > results[1]["score"]
    assert [r["language"] for r in results] == ["en", "en", "zh", "und"]
    assert results[3]["label"] == "NEUTRAL" and results[3]["note"] == "empty text"
    for r in results:
        assert -1 <= r["score"] <= 1 and abs(sum(r["probabilities"].values()) - 1) < 1e-6


def test_item_summary_counts_every_review(trained):
    client, _, reviews = trained
    item_id, count = Counter(r["item_id"] for r in reviews).most_common(1)[0]
    summary = client.call("GET", f"/v1/items/{item_id}/sentiment")
    assert summary["reviews"] == count
    assert abs(summary["share_positive"] + summary["share_negative"] + summary["share_neutral"] - 1) < 1e-3
    assert client.request("GET", "/v1/items/no-such-item/sentiment")[0] == 404


@pytest.mark.parametrize("body,status", [({"texts": ["a"] * 101}, 413), ({"text": "x" * 5001}, 413),
                                         ({"texts": [None]}, 422)])
def test_bad_input_gets_4xx(trained, body, status):
    client, _, _ = trained
    assert client.request("POST", "/v1/sentiment", body)[0] == status
