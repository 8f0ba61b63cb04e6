"""Logs hold no customer text: an error is logged as its type and code location only."""

from __future__ import annotations

import json

from tailor.core.logsafe import exception_summary


def _raise_with_customer_text():
    try:
        int("I loved this blender, call me at jane@example.com")
    except ValueError as exc:
        raise RuntimeError("row 7 of user jane.doe: 'I loved this blender'") from exc


def test_summary_names_the_error_and_where_but_not_the_data():
    try:
        _raise_with_customer_text()
    except RuntimeError as exc:
        summary = exception_summary(exc)
    text = json.dumps(summary)
    assert summary["error_type"] == "RuntimeError <- ValueError"
    assert any("_raise_with_customer_text" in frame for frame in summary["stack"])
    for secret in ("blender", "jane", "example.com", "row 7"):
        assert secret not in text


def test_an_unhandled_error_in_a_route_logs_no_customer_text(caplog):
    from pathlib import Path

    from aws_lambda_powertools.event_handler.router import APIGatewayRouter

    from tailor.api.http import build_app

    router = APIGatewayRouter()

    @router.post("/v1/boom")
    def boom():
        raise ValueError("could not parse review 'my husband hated it' of jane@example.com")

    event = json.loads((Path(__file__).parents[1] / "events" / "apigateway_rest_proxy.json").read_text())
    event.update(path="/v1/boom", resource="/v1/boom", httpMethod="POST", body="{}", isBase64Encoded=False)
    response = build_app(router).resolve(event, None)
    assert response["statusCode"] == 500 and "jane" not in response["body"]
    [record] = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert record.exc_info is None  # a formatted traceback would end with the message
    assert record.error_type == "ValueError" and any("in boom" in frame for frame in record.stack)
    text = json.dumps({k: v for k, v in record.__dict__.items() if k != "args"}, default=str)
    assert "jane" not in text and "husband" not in text
