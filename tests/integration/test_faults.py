"""Fault injection: what breaks must not break serving, the job records or the data.

Models are hand-made versions (tests/fixtures/synthetic.py), trainers are stand-ins injected
where run_job imports them, and AWS faults are injected into botocore (moto behind it). Each
test names the protection it guards; it was checked to fail with that protection removed
(see the `Guards:` line of each test).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import types
from datetime import UTC, datetime, timedelta

import pytest
from botocore.awsrequest import AWSResponse
from harness import BUCKET, TABLE, LambdaContext, call, load_handler, run_threads, s3_event

from tailor import bootstrap
from tailor.training.runner import Candidate
from tests.fixtures.synthetic import promote_version, recommender_files, sentiment_files

USERS = [f"u{i}" for i in range(8)]
ITEMS = [f"i{i}" for i in range(12)]


# ---------------------------------------------------------------- helpers


def recommendations(user: str = "u1") -> tuple[int, dict]:
    return call("recommend", "GET", f"/v1/users/{user}/recommendations", resource="/v1/users/{user_id}/recommendations",
                path_params={"user_id": user})


def sentiment(text: str = "great") -> tuple[int, dict]:
    return call("sentiment", "POST", "/v1/sentiment", {"text": text})


def job(job_id: str) -> dict:
    return call("ingest", "GET", f"/v1/training-jobs/{job_id}", resource="/v1/training-jobs/{job_id}",
                path_params={"job_id": job_id})[1]


@pytest.fixture
def serving(aws):
    """A good recommender and sentiment version, current and already served once."""
    registry = bootstrap.model_registry()
    promote_version(registry, "recommender", "v1-good", recommender_files(USERS, ITEMS))
    promote_version(registry, "sentiment", "v1-good", sentiment_files("v1-good"))
    assert recommendations()[1]["model_version"] == "v1-good"
    assert sentiment()[1]["model_version"] == "v1-good"
    return registry


def cold_start() -> None:
    """A new container: nothing cached (what Lambda does after a deploy, a scale-out or a crash)."""
    bootstrap.reset()


def expire_caches() -> None:
    bootstrap.recommend_service().models.expire()
    bootstrap.sentiment_service().models.expire()


class FakeTrainer:
    """Stands in for tailor.training.<model>_job (no TensorFlow): returns a good candidate, or
    fails the way it is told to."""

    def __init__(self, model: str, fail: BaseException | None = None, write_partial: bool = False,
                 pause: threading.Event | None = None):
        self.model, self.fail, self.write_partial, self.pause = model, fail, write_partial, pause

    def train(self, ctx) -> Candidate:
        files = recommender_files(USERS, ITEMS, seed=7) if self.model == "recommender" else sentiment_files(ctx.version)
        if self.write_partial:  # half the artifacts written before the failure
            name = sorted(files)[0]
            ctx.store.put(f"models/{self.model}/{ctx.version}/{name}", files[name])
        if self.pause is not None:
            self.pause.wait(5)
        if self.fail is not None:
            raise self.fail
        return Candidate(artifacts=files, metrics={"score": 1.0}, report={}, gate_metric="score", score=1.0,
                         baseline_name=None, baseline=None)


@pytest.fixture
def trainers(monkeypatch):
    """`trainers(model, **how)` installs a stand-in trainer where run_job imports it."""
    def install(model: str, **how) -> FakeTrainer:
        fake = FakeTrainer(model, **how)
        monkeypatch.setitem(sys.modules, f"tailor.training.{model}.job", types.SimpleNamespace(train=fake.train))
        return fake
    return install


def start_job(models: list[str], monkeypatch) -> dict:
    sent = []
    monkeypatch.setattr(bootstrap.training_jobs(), "invoke", sent.append)
    status, body = call("ingest", "POST", "/v1/training-jobs", {"models": models})
    assert status == 202, body
    return sent[-1]


def run_training(event: dict) -> dict:
    return load_handler("train")(event, LambdaContext())


def seed_interactions() -> None:
    status, body = call("ingest", "POST", "/v1/events", {"events": [
        {"user_id": u, "item_id": i, "timestamp": 1_700_000_000 + n} for n, (u, i) in enumerate(zip(USERS, ITEMS))]})
    assert status == 200, body


# ---------------------------------------------------------------- training faults


def test_training_that_raises_leaves_the_current_model_and_serving_untouched(serving, trainers, monkeypatch):
    # Guards: run_job catching the failure and recording FAILED, and the pointer written last.
    # Checked: with `registry.promote` moved before the trainer call, the pointer assertion fails.
    seed_interactions()
    trainers("recommender", fail=RuntimeError("simulated crash in the middle of training"), write_partial=True)
    event = start_job(["recommender"], monkeypatch)
    assert run_training(event)["status"] == "FAILED"
    record = job(event["job_id"])
    assert record["status"] == "FAILED" and "simulated crash" in record["error"]
    assert serving.current("recommender")["version"] == "v1-good"
    for fresh in (False, True):
        if fresh:
            cold_start()
        status, body = recommendations()
        assert (status, body["model_version"]) == (200, "v1-good")


class LambdaTimeout(BaseException):
    """What a timeout looks like from inside: the run stops mid-way and nothing after runs
    (a BaseException, so no `except Exception` in the code can tidy up, as on Lambda)."""


def test_training_killed_by_a_timeout_leaves_a_running_job_and_the_old_model_serving(serving, trainers, monkeypatch):
    # Guards: the pointer is written only after every artifact is stored (registry.save_version
    # then promote); a killed run can leave orphan files of its own version, never a pointer to them.
    # Checked: with promote() called before save_version() in run_job, the pointer assertion fails.
    seed_interactions()
    trainers("recommender")
    event = start_job(["recommender"], monkeypatch)
    store = bootstrap.object_store()
    real_put = store.put

    def put_then_die(key, body, *args, **kwargs):
        real_put(key, body, *args, **kwargs)
        if key.startswith("models/recommender/") and not key.endswith("current.json"):
            raise LambdaTimeout("Task timed out after 900.00 seconds")  # after the first artifact

    monkeypatch.setattr(store, "put", put_then_die)
    with pytest.raises(LambdaTimeout):
        run_training(event)
    monkeypatch.setattr(store, "put", real_put)
    assert job(event["job_id"])["status"] == "RUNNING"  # intact, not half-written
    assert serving.current("recommender")["version"] == "v1-good"
    expire_caches()
    assert recommendations()[1]["model_version"] == "v1-good"
    cold_start()
    assert recommendations()[1]["model_version"] == "v1-good"


def test_a_run_that_never_reported_back_is_shown_as_failed_after_the_function_timeout(serving, trainers, monkeypatch):
    # Guards: TrainingJobs.get reports a RUNNING job older than the training function's timeout
    # as FAILED (timed out). Checked: without that rule the status stays RUNNING forever.
    seed_interactions()
    event = start_job(["recommender"], monkeypatch)
    bootstrap.training_jobs().mark_running(event["job_id"])
    assert job(event["job_id"])["status"] == "RUNNING"
    long_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds").replace("+00:00", "Z")
    bootstrap.state_table().update(f"JOB#{event['job_id']}", "JOB", set={"started_at": long_ago})
    record = job(event["job_id"])
    assert record["status"] == "FAILED" and "timed out" in record["error"]


# ---------------------------------------------------------------- broken artifacts


@pytest.mark.parametrize("fault", ["corrupt", "missing"])
def test_a_broken_new_version_keeps_the_last_good_model_serving(serving, fault):
    # Guards: ModelCache keeping the loaded model when the new version cannot be loaded (and
    # keeping its version: expire() used to leave `model_version: null` after a failed reload).
    # Checked: with `_loaded` reset before each load and _load_previous disabled, both answer 503.
    files = recommender_files(USERS, ITEMS, seed=3)
    texts = sentiment_files("v2-broken")
    if fault == "corrupt":
        files["recommender.npz"] = b"PK\x03\x04 this is not a zip archive"
        texts = {name: b"\x00garbage" for name in texts}
    else:
        files.pop("recommender.npz")
        texts.pop(sorted(texts)[0])
    promote_version(serving, "recommender", "v2-broken", files)
    promote_version(serving, "sentiment", "v2-broken", texts)
    expire_caches()
    status, body = recommendations()
    assert (status, body["model_version"], body["strategy"]) == (200, "v1-good", "personalized")
    status, body = sentiment()
    assert (status, body["model_version"]) == (200, "v1-good")


def test_a_cold_container_with_a_broken_current_version_serves_the_previous_good_one(serving):
    # Guards: ModelCache._load_previous (a new container has no last good model of its own).
    # Checked: without it, both answers are 503 "could not be loaded".
    files = recommender_files(USERS, ITEMS, seed=3)
    files["recommender.npz"] = b"corrupt"
    promote_version(serving, "recommender", "v2-broken", files)
    promote_version(serving, "sentiment", "v2-broken", {"sentiment.npz": b"corrupt"})
    cold_start()
    status, body = recommendations()
    assert (status, body["model_version"]) == (200, "v1-good"), body
    status, body = sentiment()
    assert (status, body["model_version"]) == (200, "v1-good"), body
    # Once a good version is promoted again, it serves at the next pointer check.
    promote_version(serving, "recommender", "v3-good", recommender_files(USERS, ITEMS, seed=4))
    expire_caches()
    assert recommendations()[1]["model_version"] == "v3-good"


# ---------------------------------------------------------------- AWS throttling


def _throttle(client, operation: str, times: int, status: int, body: bytes, headers: dict) -> list:
    """The first `times` calls of `operation` answer a throttling error; later ones reach moto."""
    calls = []

    class Raw:
        def __init__(self, data):
            self.data = data

        def stream(self, **_):
            yield self.data

    def handler(request, **_):
        calls.append(time.monotonic())
        if len(calls) <= times:
            return AWSResponse(request.url, status, headers, Raw(body))
        return None

    client.meta.events.register_first(f"before-send.{client.meta.service_model.endpoint_prefix}.{operation}", handler)
    return calls


# More throttles than botocore's legacy default (5 attempts) would survive: the test fails
# unless storage.py keeps its standard retry mode with max_attempts 8.
THROTTLES = 6


@pytest.fixture
def no_sleep(monkeypatch):
    delays = []
    monkeypatch.setattr(time, "sleep", delays.append)
    return delays


def test_s3_throttling_is_retried_with_backoff(aws, no_sleep):
    # Guards: _BOTO_CONFIG retries (standard mode, max_attempts 8). Checked: with botocore's
    # default (legacy, 5 attempts) or max_attempts 0, SlowDown escapes and this fails.
    from tailor.storage.s3 import ObjectStore

    store = ObjectStore(BUCKET)  # the client exactly as the functions build it
    store.put("some/key.json", b'{"ok": true}')
    calls = _throttle(store.client, "GetObject", THROTTLES, 503,
                      b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
                      {"Content-Type": "application/xml"})
    assert store.get_json("some/key.json") == {"ok": True}
    assert len(calls) == THROTTLES + 1
    assert len(no_sleep) >= THROTTLES and all(d > 0 for d in no_sleep), no_sleep  # backed off between attempts


def test_dynamodb_throttling_is_retried_with_backoff(aws, no_sleep):
    from tailor.storage.dynamo import StateTable

    table = StateTable(TABLE)
    table.put({"pk": "X", "sk": "Y", "value": 1})
    calls = _throttle(table.table.meta.client, "GetItem", THROTTLES, 400,
                      b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}',
                      {"Content-Type": "application/x-amz-json-1.0"})
    assert table.get("X", "Y")["value"] == 1
    assert len(calls) == THROTTLES + 1
    assert len(no_sleep) >= THROTTLES and all(d > 0 for d in no_sleep), no_sleep


def test_throttling_that_never_ends_is_a_clear_error_not_a_hang(aws, no_sleep):
    from botocore.exceptions import ClientError

    from tailor.storage.dynamo import StateTable

    table = StateTable(TABLE)
    calls = _throttle(table.table.meta.client, "GetItem", 100, 400,
                      b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}',
                      {"Content-Type": "application/x-amz-json-1.0"})
    with pytest.raises(ClientError, match="ThrottlingException"):
        table.get("X", "Y")
    assert len(calls) == 9  # the first attempt and 8 retries (botocore counts retries), then the error


# ---------------------------------------------------------------- duplicate deliveries


def test_the_same_s3_event_delivered_twice_ingests_once(aws, atomic_moto):
    # Guards: the batch ledger (BATCH#<content hash>: the check before ingest and the conditional
    # put in the same transaction as the counters). Checked: with both removed (and the upload
    # kept after ingest), rows_stored is 40.
    rows = "user_id,item_id,timestamp\n" + "".join(f"u{n},i{n},{1_700_000_000 + n}\n" for n in range(20))
    key = "incoming/interactions/twice.csv"
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=rows.encode())
    event = s3_event(key, len(rows))
    handler = load_handler("ingest")
    results: list[dict] = []
    errors = run_threads([lambda: results.append(handler(event, LambdaContext())) for _ in range(2)])
    assert errors == []
    late = handler(event, LambdaContext())  # and once more, late
    # One delivery stored the 20 rows. Each other one stored nothing and said why: "duplicate"
    # (the ledger knew the content) or, once the stored upload was deleted, "refused" (the object
    # no longer exists); which of the two the concurrent one gets depends on timing.
    answers = [r for answer in [*results, late] for r in answer["ingested"]]
    assert sorted(r["status"] for r in answers if r["rows_stored"]) == ["stored"], json.dumps(answers)
    assert [r["rows_stored"] for r in answers if r["status"] == "stored"] == [20]
    others = [r for r in answers if r["status"] != "stored"]
    assert len(others) == 2 and all(r["status"] in ("duplicate", "refused") and r["message"] for r in others), others
    datasets = {d["name"]: d for d in call("ingest", "GET", "/v1/datasets")[1]["datasets"]}
    assert datasets["interactions"]["rows_stored"] == 20, datasets["interactions"]


# ---------------------------------------------------------------- concurrency


@pytest.fixture
def atomic_moto(monkeypatch):
    """One S3 and one DynamoDB request at a time inside moto, as the local stack does
    (``infra.local.moto_atomic``): a replaced key's buffer closed under a concurrent reader once
    failed a run of this test, and moto's conditional writes are not atomic across threads."""
    from infra.local.moto_atomic import make_requests_atomic

    make_requests_atomic(monkeypatch.setattr)


def test_concurrent_training_requests_keep_job_records_and_the_pointer_whole(serving, trainers, monkeypatch, atomic_moto):
    # Guards: unique job ids and the conditional put of each job record (checked: with a fixed
    # id the concurrent starts answer 500), distinct versions per run, and a pointer that always
    # names a version whose artifacts all load (a reader loads it throughout the runs).
    seed_interactions()
    trainers("recommender")
    sent: list[dict] = []
    lock = threading.Lock()

    def record(payload):
        with lock:
            sent.append(payload)

    monkeypatch.setattr(bootstrap.training_jobs(), "invoke", record)
    starts = []

    def start():
        starts.append(call("ingest", "POST", "/v1/training-jobs", {"models": ["recommender"]}))

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in starts] == [202] * 6
    job_ids = {body["job_id"] for _, body in starts}
    assert len(job_ids) == 6 and {e["job_id"] for e in sent} == job_ids

    # The runs themselves, all at once, while a reader keeps loading whatever the pointer names.
    from tailor.recommend.service import load_model

    outcomes, seen, stop = [], [], threading.Event()

    def read_pointer():
        while not stop.is_set():
            version = serving.current("recommender")["version"]
            load_model(serving, version)  # raises if the pointer names a version with missing files
            seen.append(version)

    def runs_then_stop():
        try:
            assert run_threads([lambda e=e: outcomes.append(run_training(e)) for e in sent]) == []
        finally:
            stop.set()

    # The reader's failure (a pointer naming a version with missing files) is collected, not a warning.
    assert run_threads([read_pointer, runs_then_stop]) == []
    assert sorted(o["status"] for o in outcomes) == ["SUCCEEDED"] * 6
    records = [job(job_id) for job_id in job_ids]
    assert all(r["status"] == "SUCCEEDED" and r["results"]["recommender"]["version"] for r in records)
    versions = {r["results"]["recommender"]["version"] for r in records}
    assert len(versions) == 6, "two runs wrote the same version"
    current = serving.current("recommender")["version"]
    assert current in versions
    load_model(serving, current)
    assert seen, "the reader never ran"
    cold_start()
    assert recommendations()[0] == 200
