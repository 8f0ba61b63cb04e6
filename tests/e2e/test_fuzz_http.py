"""Fuzzing the public HTTP API with schemathesis, from the OpenAPI document the API publishes.

Every operation of `GET /v1/openapi.json` gets `TAILOR_FUZZ_EXAMPLES` generated requests
(CI default below; `make fuzz` sends many more). Two checks per response: no 5xx, and the
body conforms to the documented schema for its status (the `{"error": ...}` shape for 4xx).
Failures are collected rather than raised at the first one, so one run lists every broken
operation with a reproducible curl command.

The fuzzing erases users, starts training jobs and promotes versions, so it runs on a stack
of its own (not the shared e2e stack), seeded with a little data through the API and with
hand-made model versions (tests/fixtures/synthetic.py): models serve from the first request
without a minute of TensorFlow training.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import boto3
import pytest
import requests

from infra.client import TailorClient

ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "Tailor local stack ready on "
# CI budget per operation; `make fuzz` sets TAILOR_FUZZ_EXAMPLES much higher.
EXAMPLES = int(os.environ.get("TAILOR_FUZZ_EXAMPLES", "25"))
MIN_REQUESTS = int(os.environ.get("TAILOR_FUZZ_MIN_REQUESTS", "1000"))

pytestmark = pytest.mark.slow

CATEGORIES = ["books", "games", "garden"]
ITEMS = [f"item-{i}" for i in range(30)]
USERS = [f"user-{u}" for u in range(20)]


def _start_stack(log_path: Path) -> tuple[subprocess.Popen, str]:
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "infra.local_stack", "--port", "0", "--moto-port", "0"],
                                   cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith(READY_PREFIX):
                return process, line[len(READY_PREFIX):].strip()
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"the fuzzing stack did not start:\n{log_path.read_text(errors='replace')[-3000:]}")


def _seed(client: TailorClient) -> None:
    """A small shop through the API, then hand-made model versions, profiles and segments."""
    from tailor.customers.service import build_and_save
    from tailor.models.registry import ModelRegistry
    from tailor.recommend.scorer import Recommender
    from tailor.storage.dynamo import StateTable
    from tailor.storage.s3 import ObjectStore
    from tests.fixtures.synthetic import promote_version, recommender_files, sentiment_files

    rng = random.Random(0)
    categories = {item: [CATEGORIES[i % 3]] for i, item in enumerate(ITEMS)}
    client.call("POST", "/v1/items", {"items": [{"item_id": item, "title": f"Item {item}",
                                                 "categories": "|".join(categories[item])} for item in ITEMS]})
    client.call("POST", "/v1/users", {"users": [{"user_id": user, "country": rng.choice(["FR", "DE", "JP"])}
                                                for user in USERS]})
    client.call("POST", "/v1/events", {"events": [
        {"user_id": rng.choice(USERS), "item_id": rng.choice(ITEMS), "timestamp": 1_700_000_000 + n * 60,
         "event_type": rng.choice(["view", "purchase"])} for n in range(300)]})
    client.call("POST", "/v1/reviews", {"reviews": [
        {"review_id": f"r{n}", "item_id": rng.choice(ITEMS), "user_id": rng.choice(USERS),
         "text": rng.choice(["great, I love it", "awful and broken", "fine"])} for n in range(30)]})

    status, health = client.request("GET", "/__local/health")
    assert status == 200, health
    s3 = boto3.client("s3", endpoint_url=health["moto_url"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    dynamodb = boto3.resource("dynamodb", endpoint_url=health["moto_url"], region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
    store = ObjectStore(next(iter(health["buckets"].values())), client=s3)
    state = StateTable(next(iter(health["tables"].values())), resource=dynamodb)
    registry = ModelRegistry(store, state)
    files = recommender_files(USERS, ITEMS, categories)
    promote_version(registry, "recommender", "v-fuzz-1", files)
    promote_version(registry, "sentiment", "v-fuzz-1", sentiment_files())
    build_and_save(store, state, Recommender.from_files(files), "v-fuzz-1", progress=lambda message: None)


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("fuzz-stack") / "stack.log"
    process, url = _start_stack(log_path)
    try:
        _seed(TailorClient(url))
        yield url, log_path
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_api_publishes_its_openapi_document(fuzz_stack):
    url, _ = fuzz_stack
    document = requests.get(f"{url}/v1/openapi.json", timeout=30).json()
    published = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}

    from infra.template import load_template

    resources = load_template(ROOT / "template.yaml")["Resources"]
    declared = {(event["Properties"]["Method"].upper(), event["Properties"]["Path"])
                for resource in resources.values() if resource.get("Type") == "AWS::Serverless::Function"
                for event in (resource["Properties"].get("Events") or {}).values() if event.get("Type") == "Api"}
    assert published == declared, f"only in the template: {declared - published}; only documented: {published - declared}"
    assert "Error" in document["components"]["schemas"]


def test_fuzz_every_route_no_5xx_and_responses_match_the_schema(fuzz_stack):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    url, log_path = fuzz_stack
    schema = schemathesis.openapi.from_url(f"{url}/v1/openapi.json")
    session = requests.Session()
    sent, statuses, failures = 0, Counter(), []
    started = time.monotonic()
    # Every operation but the document itself (schemathesis leaves out the URL it loaded).
    # Starting training jobs comes last: each one runs TensorFlow for a minute in the background,
    # which would slow every other request down (the stack is stopped right after).
    operations = sorted((result.ok() for result in schema.get_all_operations()),
                        key=lambda op: (op.label == "POST /v1/training-jobs", op.label))
    assert len(operations) >= 22, "the published document lists too few operations"
    # Random path ids mostly hit 404s; half of the cases use ids the seeded stack knows.
    status, segments = TailorClient(url).request("GET", "/v1/segments")
    known = {"user_id": USERS[3], "item_id": ITEMS[5], "model": "recommender", "version": "v-fuzz-1",
             "segment_id": segments["segments"][0]["segment_id"] if status == 200 else "none"}

    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        strategy = operation.as_strategy()
        if names and names <= set(known):
            strategy = strategy | operation.as_strategy(path_parameters={n: known[n] for n in names})

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def fuzz(case):
            nonlocal sent
            response = case.call(base_url=url, session=session, timeout=60)
            sent += 1
            statuses[f"{response.status_code // 100}xx"] += 1
            try:
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
            except (Exception, BaseExceptionGroup) as exc:  # collect them all: one failing route must not hide the next
                label = f"{operation.label} -> {response.status_code}"  # noqa: B023 (runs in this iteration)
                failures.append((label, f"{str(exc)[:600]}\n  {case.as_curl_command()}"))

        fuzz()

    elapsed = time.monotonic() - started
    server_errors = statuses["5xx"]
    print(f"\nfuzz: {sent} requests over {len(operations)} operations in {elapsed:.0f} s "
          f"({EXAMPLES} examples per operation); status classes {dict(sorted(statuses.items()))}; "
          f"5xx: {server_errors}; check failures: {len(failures)}")
    if failures:
        errors = [line[:1500] for line in log_path.read_text(errors="replace").splitlines() if '"level":"ERROR"' in line]
        distinct = dict(reversed(failures))  # one example per operation and status
        pytest.fail(f"{len(failures)} failing responses:\n" + "\n".join(f"{k}: {v}" for k, v in distinct.items())
                    + "\n--- errors logged by the stack ---\n" + "\n".join(errors[-5:]))
    assert sent >= min(MIN_REQUESTS, EXAMPLES * len(operations) // 2), f"only {sent} requests were sent"
