"""The HTTP face shared by every function: one resolver factory, one error shape.

Errors are `{"error": {"code", "message"}}` with a status that fits (design §4). Powertools'
own validation errors are translated here, so no route ever answers in another shape.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import Router

from tailor.core.errors import BadRequest, TailorError
from tailor.core.logsafe import exception_summary
from tailor.core.observability import MetricUnit, metrics

logger = Logger(child=True)


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return Response(status_code=status, content_type="application/json",
                    body=json.dumps({"error": error}, ensure_ascii=False, default=str))


def _describe(errors) -> tuple[bool, str, list]:
    details, malformed = [], False
    for err in errors:
        if err.get("type") == "json_invalid":
            malformed = True
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",) and not isinstance(p, int)) or "body"
        details.append({"field": loc, "problem": err.get("msg", "invalid")})
    message = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
    return malformed, message, details


JSON_TYPE = "application/json"


def as_json_request(event: dict) -> dict:
    """Every body is JSON, whatever Content-Type says: `curl -d` sends
    application/x-www-form-urlencoded, other clients text/plain or nothing, and Powertools would
    then parse a form (422 "Field required") or refuse the type. The event is copied with its
    Content-Type set to JSON, so a body that is not JSON gets the 400 that says so."""
    if not isinstance(event, dict) or not event.get("body"):
        return event
    headers = {k: v for k, v in (event.get("headers") or {}).items() if str(k).lower() != "content-type"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if str(k).lower() != "content-type"}
    headers["Content-Type"] = JSON_TYPE
    multi["Content-Type"] = [JSON_TYPE]
    return {**event, "headers": headers, "multiValueHeaders": multi}


class JsonResolver(APIGatewayRestResolver):
    """Powertools' REST resolver reading every request body as JSON (see `as_json_request`)."""

    def resolve(self, event, context):
        return super().resolve(as_json_request(event), context)


def build_app(*routers: Router) -> APIGatewayRestResolver:
    app = JsonResolver(enable_validation=True)
    for router in routers:
        app.include_router(router)

    @app.exception_handler(TailorError)
    def _tailor_error(exc: TailorError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    def _validation_error(exc: RequestValidationError):
        malformed, message, details = _describe(exc.errors())
        if malformed:
            return error_response(400, "bad_request", "the request body is not valid JSON (every body is read as "
                                                      "JSON, with or without a Content-Type header)")
        return error_response(422, "invalid_request", message or "invalid request", details)

    @app.not_found
    def _not_found(exc: NotFoundError):
        return error_response(404, "not_found", f"no route {app.current_event.http_method} {app.current_event.path}")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception):
        # Log where it failed for operators (type and stack, not the message: it may quote customer
        # data, see tailor.core.logsafe); never leak internals to the client either.
        logger.error("unhandled error", extra=exception_summary(exc))
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")

    return app


def json_body(app: APIGatewayRestResolver | Router) -> Any:
    """The parsed JSON body, or a 400 that says what is wrong with it."""
    raw = app.current_event.body
    if raw is None or not str(raw).strip():
        raise BadRequest("the request needs a JSON body")
    try:
        return json.loads(app.current_event.decoded_body or "")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None


def make_handler(*routers: Router, on_records: Callable[[dict], Any] | None = None,
                 on_invoke: Callable[[dict], Any] | None = None):
    """The Lambda entry point every function uses: structured logs with the API Gateway request
    id as correlation id, metrics flushed once per invocation (tailor.core.observability); S3 event
    batches (`Records`) go to `on_records`, direct invocations (no `httpMethod`, e.g. a function's
    own asynchronous work) to `on_invoke`, requests to the routes."""
    from aws_lambda_powertools.logging import correlation_paths

    app = build_app(*routers)
    root_logger = Logger()

    @root_logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)  # one flush per invocation
    def lambda_handler(event: dict, context: Any) -> Any:
        started, response = time.perf_counter(), None
        if "Records" in event and on_records is not None:
            route, handle = "S3 event", on_records
        elif on_invoke is not None and "httpMethod" not in event:
            route, handle = "invoke", on_invoke
        else:
            # The route template API Gateway matched, never the raw path: ids stay out of dimensions.
            route = f"{event.get('httpMethod')} {event.get('resource') or 'unknown'}"
            handle = lambda event: app.resolve(event, context)  # noqa: E731
        try:
            response = handle(event)
            return response
        finally:
            _record_request(route, response, (time.perf_counter() - started) * 1000)

    lambda_handler.app = app  # tests and the OpenAPI export read it
    return lambda_handler


def _record_request(route: str, response: Any, latency_ms: float) -> None:
    """Requests, Latency and ServerErrors per route. Which model version answered and whether a
    recommendation fell back to popular items are the services' own metrics (tailor.recommend.service,
    tailor.sentiment.service), flushed with these."""
    metrics.add_dimension("route", route)
    metrics.add_metric("Requests", MetricUnit.Count, 1)
    metrics.add_metric("Latency", MetricUnit.Milliseconds, latency_ms)
    status = response.get("statusCode") if isinstance(response, dict) else None
    failed = response is None or (isinstance(status, int) and status >= 500)  # None: the handler raised
    metrics.add_metric("ServerErrors", MetricUnit.Count, 1 if failed else 0)
