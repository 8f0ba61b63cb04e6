"""The local stack's auth mode (infra/local/auth.py): the template's route classes, and the SigV4
and API key checks a request meets before any function runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from infra.local.apigateway import HttpRequest
from infra.local.auth import BAD_SIGNATURE, FORBIDDEN, MISSING_TOKEN, UNKNOWN_KEY, Caller, Denied, Gatekeeper
from infra.local.model import ApiRoute, load_stack_model
from tests.fixtures.routes import WEBSITE_ROUTES

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1:3000"
ADMIN = ApiRoute("IngestFunction", "POST", "/v1/events", "local", authorizer="AWS_IAM")
WEBSITE = ApiRoute("RecommendFunction", "GET", "/v1/users/{user_id}/recommendations", "local",
                   api_key_required=True)


def _signed(method: str, path: str, body: bytes = b"", query: str = "", *, key: str = "testing",
            secret: str = "testing", region: str = "us-east-1", extra: dict | None = None) -> HttpRequest:
    """A request as a botocore-signing client sends it (what TailorClient(sign=True) does)."""
    url = f"http://{HOST}{path}" + (f"?{query}" if query else "")
    signable = AWSRequest(method=method, url=url, data=body or None,
                          headers={"Content-Type": "application/json", **(extra or {})})
    SigV4Auth(Credentials(key, secret), "execute-api", region).add_auth(signable)
    headers = [("Host", HOST), ("User-Agent", "test"), *signable.headers.items()]
    return HttpRequest(method, path, query, headers, body, "127.0.0.1")


def _plain(method: str, path: str, headers: dict | None = None) -> HttpRequest:
    return HttpRequest(method, path, "", [("Host", HOST), *(headers or {}).items()], b"", "127.0.0.1")


@pytest.fixture
def gate() -> Gatekeeper:
    return Gatekeeper("the-key")


def test_the_template_makes_website_routes_api_key_and_every_other_route_iam():
    routes = load_stack_model(ROOT / "template.yaml").routes
    assert routes
    for route in routes:
        if (route.method, route.path) in WEBSITE_ROUTES:
            assert (route.authorizer, route.api_key_required) == ("NONE", True), route
        else:
            assert (route.authorizer, route.api_key_required) == ("AWS_IAM", False), route
    assert WEBSITE_ROUTES <= {(r.method, r.path) for r in routes}


def test_unsigned_admin_request_is_refused_like_api_gateway(gate):
    denied = gate.check(ADMIN, _plain("POST", "/v1/events"))
    assert isinstance(denied, Denied) and denied.status == 403 and denied.message == MISSING_TOKEN


def test_signed_admin_request_passes_and_names_the_caller(gate):
    body = b'[{"user_id": "u1", "item_id": "i1"}]'
    outcome = gate.check(ADMIN, _signed("POST", "/v1/events", body, "dry_run=1&b=%20x"))
    assert outcome == Caller(access_key="testing")


def test_path_with_encoded_characters_verifies(gate):
    route = ApiRoute("ProfilesFunction", "GET", "/v1/users/{user_id}/profile", "local", authorizer="AWS_IAM")
    assert isinstance(gate.check(route, _signed("GET", "/v1/users/a%20b%2Fc/profile")), Caller)


@pytest.mark.parametrize("tamper", ["body", "path", "query", "header"])
def test_a_request_changed_after_signing_is_refused(gate, tamper):
    request = _signed("POST", "/v1/events", b'{"a": 1}', "k=1")
    if tamper == "body":
        request.body = b'{"a": 2}'
    elif tamper == "path":
        request.raw_path = "/v1/items"
    elif tamper == "query":
        request.query = "k=2"
    else:
        request.headers = [(n, "text/plain" if n.lower() == "content-type" else v) for n, v in request.headers]
    denied = gate.check(ADMIN, request)
    assert isinstance(denied, Denied) and denied.message == BAD_SIGNATURE


def test_wrong_secret_unknown_key_wrong_region_and_old_signature_are_refused(gate):
    assert gate.check(ADMIN, _signed("POST", "/v1/events", secret="guess")).message == BAD_SIGNATURE
    assert gate.check(ADMIN, _signed("POST", "/v1/events", key="AKIDOTHER")).message == UNKNOWN_KEY
    assert "region" in gate.check(ADMIN, _signed("POST", "/v1/events", region="eu-west-1")).message
    later = Gatekeeper("the-key", clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6))
    assert later.check(ADMIN, _signed("POST", "/v1/events")).message.startswith("Signature expired")


def test_website_route_needs_the_stack_api_key(gate):
    assert gate.check(WEBSITE, _plain("GET", "/v1/users/u1/recommendations")).message == FORBIDDEN
    assert gate.check(WEBSITE, _plain("GET", "/v1/users/u1/recommendations", {"x-api-key": "nope"})).message \
        == FORBIDDEN
    granted = gate.check(WEBSITE, _plain("GET", "/v1/users/u1/recommendations", {"X-API-Key": "the-key"}))
    assert granted == Caller(api_key="the-key")


def test_a_signature_does_not_replace_the_api_key(gate):
    # Website routes are metered per key by the usage plan; IAM credentials do not bypass it.
    assert isinstance(gate.check(WEBSITE, _signed("GET", "/v1/users/u1/recommendations")), Denied)


def test_client_signs_what_the_verifier_accepts(gate):
    from infra.client import TailorClient

    client = TailorClient(f"http://{HOST}", credentials=Credentials("testing", "testing"), region="us-east-1",
                          api_key="the-key")
    body = b'{"texts": ["fine"]}'
    headers = client._headers("POST", f"http://{HOST}/v1/events?x=1", body, {})
    request = HttpRequest("POST", "/v1/events", "x=1", [("Host", HOST), *headers.items()], body, "127.0.0.1")
    assert gate.check(ADMIN, request) == Caller(access_key="testing")
    assert gate.check(WEBSITE, request) == Caller(access_key=None, api_key="the-key")
