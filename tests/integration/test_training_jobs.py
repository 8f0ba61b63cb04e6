"""Training jobs and sentiment through the handlers (moto): asynchronous start, job records,
promotion gate and rollback, serving from the promoted version, batch scoring of reviews."""

import pytest
from harness import LambdaContext, call, load_handler

from infra.datagen import PRESETS, generate
from tailor import bootstrap


@pytest.fixture
def invocations(aws, monkeypatch):
    """Record the asynchronous invocations of the training function instead of sending them."""
    sent = []
    monkeypatch.setattr(bootstrap.training_jobs(), "invoke", sent.append)
    return sent


def post(path, body):
    return call("ingest", "POST", path, body)


def reviews_ingested(tmp_path):
    import csv

    files = generate(tmp_path, seed=1, **{**PRESETS["small"], "interactions": 30_000, "reviews": 700})
    with open(files["reviews"], encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for start in range(0, len(rows), 500):
        status, body = post("/v1/reviews", {"reviews": rows[start:start + 500]})
        assert status == 200, body
    return rows


def train(event):
    return load_handler("train")(event, LambdaContext())


def job(job_id):
    return call("ingest", "GET", f"/v1/training-jobs/{job_id}", resource="/v1/training-jobs/{job_id}",
                path_params={"job_id": job_id})


def test_requests_that_cannot_train_say_why(invocations):
    assert post("/v1/training-jobs", {"models": ["sentiment"]})[0] == 422  # no reviews yet
    assert post("/v1/training-jobs", {"models": ["magic"]})[0] == 422
    assert post("/v1/training-jobs", {"models": ["recommender"]})[0] == 422  # no interactions yet
    assert invocations == []
    assert job("job-nope")[0] == 404


def test_recommendations_before_any_model_are_503(aws):
    status, body = call("recommend", "GET", "/v1/users/u1/recommendations", resource="/v1/users/{user_id}/recommendations",
                        path_params={"user_id": "u1"})
    assert status == 503 and "no recommender model" in body["error"]["message"]


def test_sentiment_before_any_model_answers_from_the_lexicon_and_says_so(aws):
    texts = ["great shoes, love them", "terrible, broke after a day", "质量很好，非常满意", "质量太差了，退货", "the box"]
    status, body = call("sentiment", "POST", "/v1/sentiment", {"texts": texts})
    assert status == 200 and "model_version" not in body and "no sentiment model" in body["note"]
    assert [r["label"] for r in body["results"]] == ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE", "NEUTRAL"]
    assert {r["source"] for r in body["results"]} == {"prior"} and all("lexicon" in r["note"] for r in body["results"])
    assert [r["language"] for r in body["results"]][2:4] == ["zh", "zh"]


def test_train_promote_serve_and_roll_back(invocations, tmp_path):
    rows = reviews_ingested(tmp_path)
    status, queued = post("/v1/training-jobs", {"models": ["sentiment"]})
    assert status == 202 and queued["status"] == "QUEUED"
    assert invocations == [{"job_id": queued["job_id"], "models": ["sentiment"]}]
    assert train(invocations[0])["status"] == "SUCCEEDED"
    done = job(queued["job_id"])[1]
    assert done["status"] == "SUCCEEDED" and any("epoch" in line for line in done["progress"])
    first = done["results"]["sentiment"]
    assert first["promoted"] and first["metrics"]["accuracy"] > first["metrics"]["majority_baseline_accuracy"]

    models = {m["model"]: m for m in call("ingest", "GET", "/v1/models")[1]["models"]}
    assert models["sentiment"]["current_version"] == first["version"]

    status, scored = call("sentiment", "POST", "/v1/sentiment", {"texts": ["Love it, excellent quality", "质量很差，太失望了"]})
    assert status == 200 and scored["model_version"] == first["version"]
    assert [r["language"] for r in scored["results"]] == ["en", "zh"]
    assert scored["results"][0]["score"] > 0 > scored["results"][1]["score"]
    # A request can choose the NEUTRAL threshold: with 0 the label is the most probable class.
    status, decided = call("sentiment", "POST", "/v1/sentiment", {"texts": ["it was a room", "ok"],
                                                                  "neutral_threshold": 0})
    assert status == 200
    for result in decided["results"]:
        probabilities = result["probabilities"]
        assert result["label"].lower() == max(probabilities, key=probabilities.get)
    status, undecided = call("sentiment", "POST", "/v1/sentiment", {"text": "great", "neutral_threshold": 1})
    assert status == 200 and undecided["results"][0]["label"] == "NEUTRAL"

    # Every stored review was scored after promotion: item summaries exist.
    item_id = rows[0]["item_id"]
    status, summary = call("sentiment", "GET", f"/v1/items/{item_id}/sentiment",
                           resource="/v1/items/{item_id}/sentiment", path_params={"item_id": item_id})
    assert status == 200 and summary["reviews"] == sum(r["item_id"] == item_id for r in rows)
    assert -1 <= summary["mean_score"] <= 1

    # A second job trains a second version; promote the first back (rollback) by hand.
    status, second = post("/v1/training-jobs", {"models": ["sentiment"]})
    train(invocations[1])
    second_version = job(second["job_id"])[1]["results"]["sentiment"]["version"]
    path = f"/v1/models/sentiment/versions/{first['version']}/promote"
    status, pointer = call("ingest", "POST", path, resource="/v1/models/{model}/versions/{version}/promote",
                           path_params={"model": "sentiment", "version": first["version"]})
    assert status == 200 and pointer["version"] == first["version"] != second_version
    models = {m["model"]: m for m in call("ingest", "GET", "/v1/models")[1]["models"]}
    assert models["sentiment"]["current_version"] == first["version"]
    assert call("ingest", "POST", "/v1/models/sentiment/versions/v-nope/promote",
                resource="/v1/models/{model}/versions/{version}/promote",
                path_params={"model": "sentiment", "version": "v-nope"})[0] == 404


def test_a_failing_training_run_leaves_the_current_model_alone(invocations, tmp_path, monkeypatch):
    reviews_ingested(tmp_path)
    post("/v1/training-jobs", {"models": ["sentiment"]})
    train(invocations[0])
    before = bootstrap.model_registry().current("sentiment")

    import tailor.training.sentiment.job as sentiment_job

    def explode(*args, **kwargs):
        raise MemoryError("simulated out-of-memory in the middle of training")

    monkeypatch.setattr(sentiment_job, "train_sentiment", explode)
    status, queued = post("/v1/training-jobs", {"models": ["sentiment"]})
    assert train(invocations[1])["status"] == "FAILED"
    failed = job(queued["job_id"])[1]
    assert failed["status"] == "FAILED" and "simulated out-of-memory" in failed["error"]
    assert bootstrap.model_registry().current("sentiment") == before
    assert call("sentiment", "POST", "/v1/sentiment", {"text": "fine"})[0] == 200


@pytest.mark.parametrize("body,status", [
    ({"texts": ["ok"] * 101}, 413),
    ({"texts": ["x" * 5001]}, 413),
    ({"texts": ["ok", 3]}, 422),
    ({"texts": []}, 422),
    ({"text": "a", "texts": ["b"]}, 422),
    ({}, 422),
    ({"text": "a", "neutral_threshold": 1.5}, 422),
    ({"text": "a", "neutral_threshold": "low"}, 422),
])
def test_sentiment_bad_input_never_500(aws, body, status):
    got, error = call("sentiment", "POST", "/v1/sentiment", body)
    assert got == status and error["error"]["message"]


def test_the_retrain_schedule_skips_without_new_data_and_trains_after_new_rows(invocations):
    """The RetrainSchedule's input, as EventBridge Scheduler delivers it, to IngestFunction (moto)."""
    ingest = load_handler("ingest")
    skipped = ingest({"scheduled_training": True}, LambdaContext())
    assert skipped["status"] == "SKIPPED" and "no interactions data yet" in skipped["reason"] and invocations == []
    assert post("/v1/events", {"events": [{"user_id": "u1", "item_id": "i1", "timestamp": "2026-01-01T00:00:00Z"},
                                          {"user_id": "u2", "item_id": "i1", "timestamp": "2026-01-02T00:00:00Z"}]})[0] == 200
    queued = ingest({"scheduled_training": True}, LambdaContext())
    assert queued["status"] == "QUEUED" and queued["models"] == ["recommender"] and queued["trigger"] == "schedule"
    assert invocations == [{"job_id": queued["job_id"], "models": ["recommender"]}]
    again = ingest({"scheduled_training": True}, LambdaContext())
    assert again["status"] == "SKIPPED" and "since the last training job" in again["reason"]
    status, listed = call("ingest", "GET", "/v1/training-jobs")
    # Listed like any job (three runs may share one millisecond, so their order is not asserted).
    assert status == 200 and sorted(j["status"] for j in listed["jobs"]) == ["QUEUED", "SKIPPED", "SKIPPED"]
    with pytest.raises(ValueError, match="does not know this invocation"):
        ingest({"something": "else"}, LambdaContext())
