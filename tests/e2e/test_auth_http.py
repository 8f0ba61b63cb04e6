"""The local stack with `--auth`: admin routes need SigV4, website routes need the API key, and
the refusals are API Gateway's. A second stack of its own (the session stack stays open)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from botocore.credentials import Credentials

from infra.client import TailorClient
from tests.e2e.conftest import ROOT, STOP_TIMEOUT_SECONDS, _wait_until_ready

API_KEY = "local-test-key-0123456789"
LOCAL = Credentials("testing", "testing")


@pytest.fixture(scope="module")
def auth_stack(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("auth-stack") / "stack.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local_stack", "--port", "0", "--moto-port", "0", "--max-workers", "1",
             "--auth", "--api-key", API_KEY],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        yield _wait_until_ready(process, log_path), log_path
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=STOP_TIMEOUT_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_stack_says_auth_is_on_and_prints_the_key(auth_stack):
    url, log_path = auth_stack
    status, health = TailorClient(url).request("GET", "/__local/health")
    assert status == 200 and health["auth"] is True
    assert f"x-api-key: {API_KEY}" in log_path.read_text()


def test_unsigned_admin_request_is_refused(auth_stack):
    url, _ = auth_stack
    status, body = TailorClient(url).request("GET", "/v1/datasets")
    assert (status, body) == (403, {"message": "Missing Authentication Token"})
    # An API key is no substitute for IAM on an admin route.
    status, body = TailorClient(url, api_key=API_KEY).request("POST", "/v1/events", [{"user_id": "u", "item_id": "i"}])
    assert (status, body) == (403, {"message": "Missing Authentication Token"})


def test_signed_admin_requests_are_served(auth_stack):
    url, _ = auth_stack
    client = TailorClient(url, credentials=LOCAL, region="us-east-1")
    status, body = client.request("GET", "/v1/datasets")
    assert status == 200 and {d["name"] for d in body["datasets"]} >= {"interactions", "items"}
    # A signed body and an encoded path parameter verify through the real HTTP server too.
    event = {"user_id": "u 1", "item_id": "i1", "timestamp": 1700000000}
    status, body = client.request("POST", "/v1/events", {"events": [event]})
    assert status in (200, 201, 202) and body["rows_stored"] == 1, body
    status, body = client.request("GET", "/v1/users/u%201/profile")
    assert status == 200, body


def test_wrong_secret_is_refused_with_api_gateways_message(auth_stack):
    url, _ = auth_stack
    status, body = TailorClient(url, credentials=Credentials("testing", "wrong")).request("GET", "/v1/models")
    assert status == 403 and body["message"].startswith("The request signature we calculated does not match")


def test_website_routes_need_the_api_key(auth_stack):
    url, _ = auth_stack
    status, body = TailorClient(url).request("POST", "/v1/sentiment", {"text": "great"})
    assert (status, body) == (403, {"message": "Forbidden"})
    status, body = TailorClient(url, api_key="not-the-key").request("GET", "/v1/users/u1/recommendations")
    assert (status, body) == (403, {"message": "Forbidden"})
    website = TailorClient(url, api_key=API_KEY)
    # With the key the function answers: no model is trained in this stack, so 503 (not 403) for
    # recommendations, and sentiment from the built-in lexicon.
    status, body = website.request("GET", "/v1/users/u1/recommendations?k=3")
    assert status == 503, body
    status, body = website.request("POST", "/v1/sentiment", {"text": "great"})
    assert status == 200 and body["results"][0]["source"] == "prior", body


def test_unknown_routes_are_still_404(auth_stack):
    url, _ = auth_stack
    status, _ = TailorClient(url).request("GET", "/v1/nothing-here")
    assert status == 404
