"""The published API description: `GET /v1/openapi.json` (served by IngestFunction).

One OpenAPI document for every function's routes. Powertools generates the paths, parameters
and request bodies from the routers; this module adds what it cannot know: the error shape
every route answers with (`tailor.api.http`), the success statuses that are not 200, the bodies
of the routes that parse their JSON themselves, and the response shapes of design §4. It
imports the other routers only, never their services: no model, and never TensorFlow, is
loaded to describe the API.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from tailor import __version__

router = APIGatewayRouter()

REF = "#/components/schemas/"
# No route answers 409 (there is no conflicting state a client could cause: duplicates are
# answered 200 with status "duplicate"), so it is not listed.
ERROR_STATUSES = {400: "Malformed request (e.g. the body is not JSON)", 404: "Unknown id, item, category or route",
                  413: "Request or file too large",
                  422: "Invalid request: the message and `details` say which field and why",
                  503: "Not ready yet (e.g. no model trained yet)"}
# Routes that answer with another success status than 200.
SUCCESS_STATUS = {("post", "/v1/uploads"): 201, ("post", "/v1/training-jobs"): 202}

ANY: dict = {}  # any JSON value: the fuzzing also tries mixed types where rows are parsed leniently
_STR, _NUM, _INT = {"type": "string"}, {"type": "number"}, {"type": "integer"}
_NULLABLE_STR = {"type": ["string", "null"]}
_OBJ = {"type": "object"}

SCHEMAS: dict[str, dict] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": _STR, "message": _STR, "details": ANY}}}},
    "IngestResult": {"type": "object", "required": ["rows_stored", "rows_rejected"],
                     "properties": {"rows_stored": _INT, "rows_rejected": _INT, "status": _STR,
                                    "warnings": {"type": "object", "additionalProperties": _INT}}},
    "Upload": {"type": "object", "required": ["upload_id", "upload_url", "key", "expires_in"],
               "properties": {"upload_id": _STR, "upload_url": _STR, "key": _STR, "expires_in": _INT,
                              "headers": _OBJ, "status_url": _STR, "columns": _OBJ}},
    "UploadStatus": {"type": "object", "required": ["upload_id", "status"], "properties": {
        "upload_id": _STR, "dataset": _STR, "status": {"enum": ["waiting", "ingested", "duplicate", "refused"]},
        "rows_stored": _INT, "rows_rejected": _INT, "message": _STR, "note": _STR,
        "warnings": {"type": "object", "additionalProperties": _INT},
        "reject_samples": {"type": "array", "items": _OBJ}}},
    "TrainingJobs": {"type": "object", "required": ["jobs"], "properties": {
        "jobs": {"type": "array", "items": {"type": "object", "required": ["job_id", "status"], "properties": {
            "job_id": _STR, "status": {"enum": ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED"]}}}},
        "next_token": _STR}},
    "Report": {"type": "object", "required": ["model", "version", "plots"], "properties": {
        "model": _STR, "version": _STR, "report": ANY, "markdown": _NULLABLE_STR,
        "plots": {"type": "array", "items": {"type": "object", "required": ["name", "url"],
                                             "properties": {"name": _STR, "url": _STR}}}}},
    "Datasets": {"type": "object", "required": ["datasets"], "properties": {"datasets": {
        "type": "array", "items": {"type": "object", "required": ["name", "rows_stored", "rows_rejected"],
                                   "properties": {"name": _STR, "rows_stored": _INT, "rows_rejected": _INT}}}}},
    "TrainingJob": {"type": "object", "required": ["job_id", "status"], "properties": {
        "job_id": _STR, "status": {"enum": ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED"]}}},
    "Models": {"type": "object", "required": ["models"], "properties": {"models": {
        "type": "array", "items": {"type": "object", "required": ["model", "current_version", "versions"],
                                   "properties": {"model": _STR, "current_version": _NULLABLE_STR,
                                                  "versions": {"type": "array", "items": _OBJ}}}}}},
    "Pointer": {"type": "object", "required": ["model", "version"], "properties": {"model": _STR, "version": _STR}},
    "Recommendations": {"type": "object", "required": ["strategy", "model_version", "items"], "properties": {
        "strategy": {"enum": ["personalized", "session", "popular", "content", "similar"]},
        "model_version": _STR, "note": _STR,
        "items": {"type": "array", "items": {"type": "object", "required": ["item_id", "score", "reason"],
                                             "properties": {"item_id": _STR, "score": _NUM, "reason": _STR}}}}},
    "Segments": {"type": "object", "required": ["segments"], "properties": {"segments": {
        "type": "array", "items": {"type": "object", "required": ["segment_id", "name", "description", "size"],
                                   "properties": {"segment_id": _STR, "name": _STR, "description": _STR,
                                                  "size": _INT}}}}},
    "Audience": {"type": "object", "properties": {"users": {"type": "array", "items": {
        "type": "object", "required": ["user_id", "score"], "properties": {"user_id": _STR, "score": _NUM}}}}},
    "SentimentResults": {"type": "object", "required": ["results"], "properties": {
        "model_version": _STR, "note": _STR, "results": {"type": "array", "items": {
            "type": "object", "required": ["label", "score", "probabilities"],
            "properties": {"label": _STR, "score": _NUM, "probabilities": _OBJ, "language": _STR,
                           "source": {"enum": ["model", "blend", "prior"]}, "note": _STR}}}}},
    "Object": _OBJ,
}

# What a successful answer looks like, per route (design §4; more fields are welcome).
RESPONSES = {
    ("post", "/v1/events"): "IngestResult", ("post", "/v1/items"): "IngestResult",
    ("post", "/v1/users"): "IngestResult", ("post", "/v1/reviews"): "IngestResult",
    ("post", "/v1/uploads"): "Upload", ("get", "/v1/datasets"): "Datasets",
    ("get", "/v1/uploads/{upload_id}"): "UploadStatus", ("get", "/v1/training-jobs"): "TrainingJobs",
    ("get", "/v1/models/{model}/versions/{version}/report"): "Report",
    ("post", "/v1/training-jobs"): "TrainingJob", ("get", "/v1/training-jobs/{job_id}"): "TrainingJob",
    ("get", "/v1/models"): "Models", ("post", "/v1/models/{model}/versions/{version}/promote"): "Pointer",
    ("get", "/v1/users/{user_id}/recommendations"): "Recommendations",
    ("post", "/v1/recommendations"): "Recommendations", ("get", "/v1/items/{item_id}/similar"): "Recommendations",
    ("post", "/v1/users/{user_id}/rankings"): "Recommendations",
    ("get", "/v1/segments"): "Segments", ("post", "/v1/audiences"): "Audience",
    ("post", "/v1/sentiment"): "SentimentResults",
}


def _batch_body(route: str, fields: tuple[str, ...]) -> dict:
    record = {"type": "object", "properties": {name: ANY for name in fields}}
    return {"type": "object", "required": [route],
            "properties": {route: {"type": "array", "maxItems": 500, "items": record},
                           "columns": {"type": "object", "additionalProperties": _STR,
                                       "description": "source column → field, e.g. {\"customer_id\": \"user_id\"}"}}}


# Routes that read their JSON body themselves (batches of loosely typed rows, sentiment texts).
REQUEST_BODIES = {
    ("post", "/v1/events"): _batch_body("events", ("user_id", "item_id", "timestamp", "event_type", "value")),
    ("post", "/v1/items"): _batch_body("items", ("item_id", "title", "description", "categories", "group_id")),
    ("post", "/v1/users"): _batch_body("users", ("user_id", "country", "age")),
    ("post", "/v1/reviews"): _batch_body("reviews", ("review_id", "user_id", "item_id", "text", "rating", "label",
                                                     "timestamp", "language")),
    ("post", "/v1/sentiment"): {"type": "object", "properties": {
        "text": _STR, "texts": {"type": "array", "minItems": 1, "maxItems": 100, "items": _STR},
        "neutral_threshold": {"type": "number", "minimum": 0, "maximum": 1}}},
}


def _routers() -> list:
    from tailor.api.routes import admin, profiles, recommend, sentiment

    return [admin.router, recommend.router, profiles.router, sentiment.router, router]


def _content(name: str) -> dict:
    return {"application/json": {"schema": {"$ref": REF + name}}}


def document() -> dict:
    """The OpenAPI 3.1 document of every route (a fresh copy)."""
    return copy.deepcopy(_document())


@lru_cache(maxsize=1)
def _document() -> dict:
    # A resolver of its own: `include_router` would re-point each router at this resolver and
    # steal the serving app's current request, so the routes are registered one by one instead.
    resolver = APIGatewayRestResolver(enable_validation=True)
    for each in _routers():
        for route, func in each._routes.items():
            resolver.route(*route)(func)
    doc = json.loads(resolver.get_openapi_json_schema(
        title="Tailor", version=__version__,
        description="Serverless personalization: ingest, training, recommendations, profiles, "
                    "audiences and review sentiment. Errors are {\"error\": {\"code\", \"message\"}}."))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)  # Powertools' own error shape: tailor.api.http answers with `Error` instead
    schemas.update(copy.deepcopy(SCHEMAS))
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            key = (method, path)
            responses = operation.setdefault("responses", {})
            success = responses.pop("200", None) or {"description": "Successful Response"}
            success["content"] = _content(RESPONSES.get(key, "Object"))
            responses.clear()
            responses[str(SUCCESS_STATUS.get(key, 200))] = success
            for status, description in ERROR_STATUSES.items():
                responses[str(status)] = {"description": description, "content": _content("Error")}
            if key in REQUEST_BODIES and "requestBody" not in operation:
                operation["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": copy.deepcopy(REQUEST_BODIES[key])}}}
    return doc


@router.get("/v1/openapi.json")
def get_openapi():
    return Response(status_code=200, content_type="application/json",
                    body=json.dumps(document(), ensure_ascii=False))
