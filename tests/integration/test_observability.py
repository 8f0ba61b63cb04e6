"""Metrics as CloudWatch receives them: one EMF line per invocation, route templates as dimensions,
fallbacks and model versions from the services that answered, ingest row counts, and no customer data."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from harness import LambdaContext, api_event, call

from tailor.api.http import make_handler
from tailor.core.observability import metrics

router = APIGatewayRouter()


class _Cache:
    """The served model a ModelCache would give: a hand-made version (tests/fixtures/synthetic)."""

    def __init__(self):
        from tailor.recommend.scorer import Recommender
        from tailor.recommend.service import ServedModel
        from tests.fixtures.synthetic import recommender_files

        files = recommender_files([f"u-{n}" for n in range(40, 50)], [f"i-{n}" for n in range(20)])
        self.model = ServedModel(Recommender.from_files(files), {})

    def get(self):
        return self.model, "20261128T000000Z-abcd"


@router.get("/v1/users/<user_id>/recommendations")
def _recommend(user_id: str):
    from tailor.recommend.service import RecommendService

    # The real service: the metrics of an answer are its own (a stranger falls back to popular).
    return RecommendService(_Cache()).for_user(user_id, 5)  # type: ignore[arg-type]


@router.get("/v1/boom")
def _boom():
    raise RuntimeError("secret customer text that must not leak")


def _emf_lines(out: str) -> list[dict]:
    return [blob for blob in map(json.loads, filter(None, out.splitlines())) if "_aws" in blob]


def _request_blob(out: str) -> dict:
    blobs = [b for b in _emf_lines(out) if "Requests" in b]
    assert len(blobs) == 1, f"expected one flush per invocation, got {len(blobs)}"
    return blobs[0]


@pytest.fixture(autouse=True)
def _no_metrics_left_by_earlier_tests():
    # Services called directly by other tests (no handler to flush) leave metrics in the shared
    # Metrics object; a handler's flush would carry them into this test's line.
    metrics.clear_metrics()


def test_requests_latency_fallback_and_model_version_per_route_template(capsys):
    handler = make_handler(router)
    resource = "/v1/users/{user_id}/recommendations"
    capsys.readouterr()
    for user, expected in (("u-42", 0.0), ("new-visitor-7", 1.0)):
        event = api_event("GET", f"/v1/users/{user}/recommendations", resource=resource, path_params={"user_id": user})
        assert handler(event, LambdaContext())["statusCode"] == 200
        blob = _request_blob(capsys.readouterr().out)
        assert blob["route"] == "GET /v1/users/{user_id}/recommendations"  # the template, not the user's path
        assert blob["Requests"] == [1.0] and blob["ServerErrors"] == [0.0] and blob["Latency"][0] > 0
        assert blob["Fallback"] == [expected] and blob["ModelVersionServed"] == [1.0]
        assert blob["model_version"] == "20261128T000000Z-abcd"
        (dimensions,) = blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        assert "route" in dimensions
        assert user not in json.dumps(blob), "an id became part of a metric line"


def test_a_5xx_is_counted_without_the_error_text(capsys):
    handler = make_handler(router)
    capsys.readouterr()
    response = handler(api_event("GET", "/v1/boom", resource="/v1/boom"), LambdaContext())
    assert response["statusCode"] == 500
    blob = _request_blob(capsys.readouterr().out)
    assert blob["ServerErrors"] == [1.0] and "Fallback" not in blob
    assert "secret customer text" not in json.dumps(blob)


def test_ingest_reports_rows_stored_and_rejected(aws, capsys):
    events = [{"user_id": "u1", "item_id": "i1", "timestamp": "2024-03-01T10:00:00Z"},
              {"user_id": "u2", "item_id": "i2", "timestamp": 1709287200},
              {"item_id": "i3", "timestamp": 1709287200}]
    capsys.readouterr()
    status, _ = call("ingest", "POST", "/v1/events", {"events": events})
    assert status == 200
    blob = _request_blob(capsys.readouterr().out)
    assert (blob["RowsStored"], blob["RowsRejected"]) == ([2.0], [1.0])
    assert blob["route"] == "POST /v1/events" and blob["dataset"] == "interactions"


class _SentimentCache:
    last_error = None

    def get(self):
        from tailor.sentiment.scorer import SentimentScorer
        from tests.fixtures.synthetic import sentiment_files

        return SentimentScorer.from_files(sentiment_files("v-sentiment-1")), "v-sentiment-1"


@router.post("/v1/sentiment")
def _sentiment():
    from tailor.sentiment.service import SentimentService, parse_request

    texts, threshold = parse_request(router.current_event.json_body)
    return SentimentService(None, None, _SentimentCache()).score(texts, threshold)  # type: ignore[arg-type]


def test_a_sentiment_answer_reports_the_model_version_that_scored_it(capsys):
    handler = make_handler(router)
    capsys.readouterr()
    event = api_event("POST", "/v1/sentiment", {"texts": ["great, I love it"]}, resource="/v1/sentiment")
    assert handler(event, LambdaContext())["statusCode"] == 200
    blob = _request_blob(capsys.readouterr().out)
    assert blob["ModelVersionServed"] == [1.0] and blob["model_version"] == "v-sentiment-1"
    assert "Fallback" not in blob and "strategy" not in blob
