"""One API, three descriptions that must agree: the API events of template.yaml (what API Gateway
routes to each function), the routes each function's resolver registers (what it answers), and
the OpenAPI document the API publishes (tailor.api.routes.openapi, generated from the routes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.template import load_template
from tests.fixtures.handlers import load_handler

ROOT = Path(__file__).resolve().parents[2]

# Documented exceptions: none. `GET /v1/openapi.json` is an API event of IngestFunction, a route
# of its resolver and a path of the document like every other route.
EXCEPTIONS: set[tuple[str, str]] = set()


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(ROOT / "template.yaml")


def _template_routes(template: dict) -> dict[str, set[tuple[str, str]]]:
    """{function folder: {(METHOD, path)}} of every API event, by the function's CodeUri."""
    routes: dict[str, set[tuple[str, str]]] = {}
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        for event in (props.get("Events") or {}).values():
            if event.get("Type") == "Api":
                folder = Path(str(props["CodeUri"])).name
                routes.setdefault(folder, set()).add((event["Properties"]["Method"].upper(),
                                                      event["Properties"]["Path"]))
    return routes


def _resolver(folder: str):
    """functions/<folder>/app.py imported the way Lambda does; its handler's resolver."""
    return load_handler(folder).app


def _registered(app) -> set[tuple[str, str]]:
    return {(route.method.upper(), route.openapi_path) for route in app._static_routes + app._dynamic_routes}


def _documented() -> set[tuple[str, str]]:
    from tailor.api.routes.openapi import document

    return {(method.upper(), path) for path, operations in document()["paths"].items() for method in operations}


def test_every_function_serves_exactly_its_template_api_events(template):
    declared = _template_routes(template)
    assert set(declared) == {"ingest", "recommend", "profiles", "sentiment"}, declared
    for folder, routes in declared.items():
        registered = _registered(_resolver(folder))
        assert registered - EXCEPTIONS == routes - EXCEPTIONS, (
            f"{folder}: only in the template {routes - registered}; only registered {registered - routes}")


def test_the_document_lists_every_template_route_and_nothing_else(template):
    declared = set().union(*_template_routes(template).values())
    documented = _documented()
    assert documented - EXCEPTIONS == declared - EXCEPTIONS, (
        f"only in the template {declared - documented}; only documented {documented - declared}")


def test_the_routes_registered_are_the_routes_documented():
    registered = set().union(*(_registered(_resolver(f)) for f in ("ingest", "recommend", "profiles", "sentiment")))
    assert registered == _documented()


def test_every_operation_documents_its_success_status_model_and_the_error_shape():
    from tailor.api.routes.openapi import document

    doc = document()
    success = {}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            statuses = {int(code) for code in operation["responses"]}
            (ok,) = {code for code in statuses if code < 400}
            success[(method.upper(), path)] = ok
            answer = operation["responses"][str(ok)]["content"]["application/json"]["schema"]
            assert answer.get("$ref", "").startswith("#/components/schemas/"), (method, path, answer)
            for code in statuses - {ok}:
                error = operation["responses"][str(code)]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/Error"}, (method, path, code)
            assert {400, 404, 422} <= statuses, (method, path)
    assert {k: v for k, v in success.items() if v != 200} == {("POST", "/v1/uploads"): 201,
                                                             ("POST", "/v1/training-jobs"): 202,
                                                             ("POST", "/v1/promotions"): 201,
                                                             ("POST", "/v1/experiments"): 201}
    schemas = doc["components"]["schemas"]
    assert schemas["Error"]["required"] == ["error"]
    assert not {"HTTPValidationError", "ValidationError", "ResponseValidationError"} & set(schemas)


def test_batch_bodies_follow_the_dataset_schemas():
    from tailor.api.models import MAX_BATCH
    from tailor.api.routes.openapi import document
    from tailor.datasets.ingest import MAX_BATCH_RECORDS
    from tailor.datasets.schemas import SCHEMAS, dataset_name

    assert MAX_BATCH == MAX_BATCH_RECORDS
    paths = document()["paths"]
    for route in ("events", "items", "users", "reviews"):
        schema = paths[f"/v1/{route}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        rows = schema["properties"][route]
        assert rows["maxItems"] == MAX_BATCH_RECORDS
        assert tuple(rows["items"]["properties"]) == SCHEMAS[dataset_name(route)].field_names
