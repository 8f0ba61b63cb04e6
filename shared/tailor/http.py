"""The HTTP face shared by every function: one resolver factory, one error shape.

Errors are `{"error": {"code", "message"}}` with a status that fits (design §4). Powertools'
own validation errors are translated here, so no route ever answers in another shape.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import Router

from .errors import BadRequest, TailorError

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


def build_app(*routers: Router) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)
    for router in routers:
        app.include_router(router)

    @app.exception_handler(TailorError)
    def _tailor_error(exc: TailorError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    def _validation_error(exc: RequestValidationError):
        malformed, message, details = _describe(exc.errors())
        if malformed:
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        return error_response(422, "invalid_request", message or "invalid request", details)

    @app.not_found
    def _not_found(exc: NotFoundError):
        return error_response(404, "not_found", f"no route {app.current_event.http_method} {app.current_event.path}")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception):
        # Log the detail for operators; never leak internals (or customer data) to the client.
        logger.exception("unhandled error")
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")

    return app


def json_body(app: APIGatewayRestResolver) -> Any:
    """The parsed JSON body, or a 400 that says what is wrong with it."""
    raw = app.current_event.body
    if raw is None or not str(raw).strip():
        raise BadRequest("the request needs a JSON body")
    try:
        return json.loads(app.current_event.decoded_body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None


def make_handler(*routers: Router, on_records: Callable[[dict], Any] | None = None,
                 on_invoke: Callable[[dict], Any] | None = None):
    """The Lambda entry point every function uses: structured logs with the API Gateway request
    id as correlation id; S3 event batches (`Records`) go to `on_records`, direct invocations
    (no `httpMethod`, e.g. a function's own asynchronous work) to `on_invoke`, requests to the routes."""
    from aws_lambda_powertools.logging import correlation_paths

    app = build_app(*routers)
    root_logger = Logger()

    @root_logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    def lambda_handler(event: dict, context: Any) -> Any:
        if "Records" in event and on_records is not None:
            return on_records(event)
        if on_invoke is not None and "httpMethod" not in event:
            return on_invoke(event)
        return app.resolve(event, context)

    lambda_handler.app = app  # type: ignore[attr-defined]  # tests and the OpenAPI export read it
    return lambda_handler
