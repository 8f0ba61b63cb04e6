"""The local stack's pure parts: template resolution, routing, proxy events, S3 event routing.

The stack running as a whole is tested in tests/integration/test_local_stack.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from infra.local.apigateway import (
    HttpRequest,
    MalformedProxyResponse,
    NoRoute,
    RouteMatch,
    RouteTable,
    build_proxy_event,
    proxy_response,
)
from infra.local.intrinsics import Resolver, TemplateError
from infra.local.model import ApiRoute, S3Subscription, load_stack_model, merge_globals
from infra.local.s3events import route_notification
from infra.template import load_template

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"

TEMPLATE = {
    "Parameters": {"Stage": {"Type": "String", "Default": "dev"}, "Workers": {"Type": "Number", "Default": 0},
                   "Flag": {"Type": "String", "Default": True}},
    "Conditions": {
        "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "HasWorkers": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Workers"}, 0]}]},
        "ProdWithWorkers": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "HasWorkers"}]},
    },
    "Resources": {
        "DataBucket": {"Type": "AWS::S3::Bucket"},
        "NamedBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Sub": "b-${Stage}"}}},
        "StateTable": {"Type": "AWS::DynamoDB::Table"},
        "Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": True}},
        "TrainFunction": {"Type": "AWS::Serverless::Function"},
        "ProdTable": {"Type": "AWS::DynamoDB::Table", "Condition": "IsProd"},
    },
}


@pytest.fixture
def resolver():
    return Resolver(TEMPLATE, {"Stage": "local"})


def test_refs_use_overrides_defaults_and_pseudo_parameters(resolver):
    assert resolver.resolve({"Ref": "Stage"}) == "local"
    assert resolver.resolve({"Ref": "Workers"}) == "0"  # parameters are strings, as in CloudFormation
    assert resolver.resolve({"Ref": "Flag"}) == "true"
    assert resolver.resolve({"Ref": "AWS::AccountId"}) == "123456789012"
    assert resolver.resolve({"Ref": "AWS::Region"}) == "us-east-1"
    assert resolver.resolve({"Ref": "AWS::StackName"}) == "tailor-local"


def test_physical_names_explicit_or_generated(resolver):
    assert resolver.resolve({"Ref": "NamedBucket"}) == "b-local"
    assert resolver.resolve({"Ref": "DataBucket"}) == "tailor-local-databucket"  # bucket names are lower case
    assert resolver.resolve({"Ref": "StateTable"}) == "tailor-local-StateTable"
    assert resolver.resolve({"Ref": "TrainFunction"}) == "tailor-local-TrainFunction"
    # Ref of a queue is its URL.
    assert resolver.resolve({"Ref": "Jobs"}).endswith("/123456789012/tailor-local-Jobs.fifo")


def test_sub_in_both_forms_with_attributes_and_escapes(resolver):
    assert resolver.resolve({"Fn::Sub": "t-${Stage}-${AWS::AccountId}-${AWS::Region}"}) == \
        "t-local-123456789012-us-east-1"
    assert resolver.resolve({"Fn::Sub": "${DataBucket.Arn}/*"}) == "arn:aws:s3:::tailor-local-databucket/*"
    listed = {"Fn::Sub": ["${Name}:${Stage}", {"Name": {"Ref": "StateTable"}}]}
    assert resolver.resolve(listed) == "tailor-local-StateTable:local"
    assert resolver.resolve({"Fn::Sub": "${!Literal}-${Stage}"}) == "${Literal}-local"


def test_get_att_join_select_split(resolver):
    assert resolver.resolve({"Fn::GetAtt": ["StateTable", "Arn"]}) == \
        "arn:aws:dynamodb:us-east-1:123456789012:table/tailor-local-StateTable"
    assert resolver.resolve({"Fn::GetAtt": ["TrainFunction", "Arn"]}) == \
        "arn:aws:lambda:us-east-1:123456789012:function:tailor-local-TrainFunction"
    assert resolver.resolve({"Fn::GetAtt": ["Jobs", "Arn"]}) == \
        "arn:aws:sqs:us-east-1:123456789012:tailor-local-Jobs.fifo"
    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}, 3]]}) == "a-local-3"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}) == "y"


def test_conditions_if_and_no_value(resolver):
    assert resolver.condition("IsProd") is False
    assert resolver.condition("HasWorkers") is False  # "0" equals 0 once both are strings
    assert resolver.condition("ProdWithWorkers") is False
    node = {"Keep": 1, "Drop": {"Fn::If": ["IsProd", 5, {"Ref": "AWS::NoValue"}]},
            "List": ["a", {"Ref": "AWS::NoValue"}], "Mode": {"Fn::If": ["IsProd", "prod", "dev"]}}
    assert resolver.resolve(node) == {"Keep": 1, "List": ["a"], "Mode": "dev"}
    assert resolver.resource_enabled("ProdTable") is False
    assert Resolver(TEMPLATE, {"Stage": "prod"}).resource_enabled("ProdTable") is True


def test_unresolvable_input_is_a_clear_error(resolver):
    with pytest.raises(TemplateError, match="unknown parameter or resource 'Nope'"):
        resolver.resolve({"Ref": "Nope"})
    with pytest.raises(TemplateError, match="Fn::ImportValue"):
        resolver.resolve({"Fn::ImportValue": "x"})
    with pytest.raises(TemplateError, match="not declared"):
        Resolver(TEMPLATE, {"Stag": "typo"})


def test_globals_merge_like_sam():
    merged = merge_globals(
        {"Timeout": 29, "Layers": ["a"], "Environment": {"Variables": {"A": "1", "B": "1"}}},
        {"Timeout": 900, "Layers": ["b"], "Environment": {"Variables": {"B": "2"}}},
    )
    assert merged == {"Timeout": 900, "Layers": ["a", "b"], "Environment": {"Variables": {"A": "1", "B": "2"}}}


# -- the real template ------------------------------------------------------------------

def _template_api_events(template: dict) -> set[tuple[str, str, str]]:
    found = set()
    for logical_id, resource in template["Resources"].items():
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if event["Type"] == "Api":
                found.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"], logical_id))
    return found


def test_real_template_routes_names_and_environment():
    model = load_stack_model(ROOT / "template.yaml", stage="local")
    served = {(route.method, route.path, route.function) for route in model.routes}
    assert served == _template_api_events(load_template(ROOT / "template.yaml"))
    table = model.tables[0].name
    train = model.functions["TrainFunction"]
    for spec in model.functions.values():
        assert spec.environment["STATE_TABLE"] == table
        assert spec.environment["STAGE"] == "local"
        assert spec.handler == "app.lambda_handler"
    assert model.functions["IngestFunction"].environment["TRAIN_FUNCTION_NAME"] == train.name
    assert model.functions["IngestFunction"].environment["DATA_BUCKET"] == model.buckets[0].name
    # The image function runs from its Dockerfile's folder with the layer folders on sys.path.
    assert train.package_type == "Image" and train.code_dir == ROOT / "functions" / "train"
    assert ROOT / "shared" in train.layer_dirs
    assert ROOT / "shared" in model.functions["RecommendFunction"].layer_dirs
    assert any(s.function == "IngestFunction" and s.prefix == "incoming/" for s in model.s3_subscriptions)


# -- routing -------------------------------------------------------------------------------

ROUTES = [
    ApiRoute("Items", "GET", "/v1/items/{item_id}", "local"),
    ApiRoute("Featured", "GET", "/v1/items/featured", "local"),
    ApiRoute("Similar", "GET", "/v1/items/{item_id}/similar", "local"),
    ApiRoute("Files", "ANY", "/files/{path+}", "local"),
    ApiRoute("Delete", "DELETE", "/v1/items/{item_id}", "local"),
]


@pytest.mark.parametrize("method,path,function,parameters", [
    ("GET", "/v1/items/featured", "Featured", {}),
    ("GET", "/v1/items/i%2F7", "Items", {"item_id": "i%2F7"}),  # stays encoded, as on API Gateway
    ("DELETE", "/v1/items/i7", "Delete", {"item_id": "i7"}),
    ("GET", "/v1/items/i7/similar", "Similar", {"item_id": "i7"}),
    ("PATCH", "/files/a/b/c.txt", "Files", {"path": "a/b/c.txt"}),
])
def test_route_matching(method, path, function, parameters):
    match = RouteTable(ROUTES).match(method, path)
    assert isinstance(match, RouteMatch)
    assert (match.route.function, match.path_parameters) == (function, parameters)


def test_no_route_and_wrong_method():
    table = RouteTable(ROUTES)
    assert table.match("GET", "/v1/users").status == 404
    assert table.match("GET", "/files").status == 404  # a greedy parameter needs one segment at least
    wrong = table.match("POST", "/v1/items/i7")
    assert isinstance(wrong, NoRoute) and wrong.status == 405 and wrong.allowed_methods == ("DELETE", "GET")


def _request(**overrides) -> HttpRequest:
    values = dict(method="POST", raw_path="/v1/items/i%207", query="k=5&tag=a&tag=b&empty=",
                  headers=[("Host", "127.0.0.1:3000"), ("Content-Type", "application/json"), ("X-Multi", "1"),
                           ("X-Multi", "2"), ("X-Forwarded-For", "10.0.0.1")],
                  body=b'{"a": 1}', source_ip="127.0.0.1")
    values.update(overrides)
    return HttpRequest(**values)


def test_proxy_event_has_the_canonical_shape():
    canonical = json.loads((EVENTS / "apigateway_rest_proxy.json").read_text())
    route = ApiRoute("Items", "POST", "/v1/items/{item_id}", "local")
    event = build_proxy_event(RouteMatch(route, {"item_id": "i%207"}), _request(), "req-1", 3000)
    assert set(event) == set(canonical)
    assert set(canonical["requestContext"]) <= set(event["requestContext"])
    assert set(canonical["requestContext"]["identity"]) <= set(event["requestContext"]["identity"])
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/v1/items/{item_id}", "/v1/items/i%207", "POST")
    assert event["pathParameters"] == {"item_id": "i%207"}
    assert event["queryStringParameters"] == {"k": "5", "tag": "b", "empty": ""}
    assert event["multiValueQueryStringParameters"]["tag"] == ["a", "b"]
    assert event["headers"]["X-Multi"] == "2" and event["multiValueHeaders"]["X-Multi"] == ["1", "2"]
    assert event["headers"]["X-Forwarded-For"] == "10.0.0.1, 127.0.0.1"  # API Gateway appends the caller
    assert (event["body"], event["isBase64Encoded"]) == ('{"a": 1}', False)
    context = event["requestContext"]
    assert (context["stage"], context["path"], context["resourcePath"]) == ("local", "/local/v1/items/i%207",
                                                                            "/v1/items/{item_id}")
    assert context["requestId"] == "req-1" and context["identity"]["sourceIp"] == "127.0.0.1"


def test_proxy_event_nulls_and_binary_bodies():
    route = ApiRoute("Items", "GET", "/v1/items", "local", binary_media_types=("image/*",))
    plain = build_proxy_event(RouteMatch(route, {}), _request(method="GET", query="", body=b""), "r", 3000)
    assert plain["queryStringParameters"] is None and plain["pathParameters"] is None and plain["body"] is None
    not_text = build_proxy_event(RouteMatch(route, {}), _request(body=b"\xff\x00\xfe"), "r", 3000)
    assert not_text["isBase64Encoded"] and base64.b64decode(not_text["body"]) == b"\xff\x00\xfe"
    image = _request(body=b"GIF89a", headers=[("Content-Type", "image/gif")])
    declared = build_proxy_event(RouteMatch(route, {}), image, "r", 3000)
    assert declared["isBase64Encoded"] and base64.b64decode(declared["body"]) == b"GIF89a"


def test_proxy_response_headers_and_body():
    status, headers, body = proxy_response(json.dumps({
        "statusCode": 201, "headers": {"X-One": "1", "Set-Cookie": "a=1"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}, "body": '{"ok": true}'}))
    assert status == 201 and body == b'{"ok": true}'
    assert headers.count(("Set-Cookie", "a=1")) == 1 and ("Set-Cookie", "b=2") in headers
    assert ("Content-Type", "application/json") in headers  # API Gateway's default
    status, _, body = proxy_response(json.dumps({"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(),
                                                 "isBase64Encoded": True}))
    assert body == b"\x00\x01"


@pytest.mark.parametrize("payload,reason", [
    ({"statusCode": 200, "body": {"not": "a string"}}, "body must be a string"),
    ({"body": "{}"}, "statusCode"),
    ([1, 2], "expected an object"),
    ({"statusCode": 200, "body": "!!", "isBase64Encoded": True}, "not base64"),
])
def test_malformed_proxy_responses(payload, reason):
    with pytest.raises(MalformedProxyResponse, match=reason):
        proxy_response(json.dumps(payload))


# -- S3 notifications ------------------------------------------------------------------------

def test_s3_subscription_filters_on_the_decoded_key():
    csv_uploads = S3Subscription("F", "E", "bucket", ("s3:ObjectCreated:*",), prefix="incoming/", suffix=".csv")
    assert csv_uploads.matches("bucket", "ObjectCreated:Put", "incoming/my+file.csv")
    assert csv_uploads.matches("bucket", "ObjectCreated:CompleteMultipartUpload", "incoming/a%2Bb.csv")
    assert not csv_uploads.matches("bucket", "ObjectRemoved:Delete", "incoming/a.csv")
    assert not csv_uploads.matches("other", "ObjectCreated:Put", "incoming/a.csv")
    assert not csv_uploads.matches("bucket", "ObjectCreated:Put", "incoming/a.json")
    # The prefix rule is checked against the real key, not its encoded form.
    spaced = S3Subscription("F", "E", "bucket", ("s3:ObjectCreated:Put",), prefix="in coming/")
    assert spaced.matches("bucket", "ObjectCreated:Put", "in+coming/x")
    assert not spaced.matches("bucket", "ObjectCreated:Copy", "in+coming/x")


def test_notifications_are_routed_per_function_and_test_events_ignored():
    subscriptions = [S3Subscription("Csv", "E", "bucket", ("s3:ObjectCreated:*",), suffix=".csv"),
                     S3Subscription("All", "E", "bucket", ("s3:ObjectCreated:*",))]
    assert route_notification(json.dumps({"Event": "s3:TestEvent", "Bucket": "bucket"}), subscriptions) == []
    moto_record = {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "t",
                   "eventName": "ObjectCreated:Put",
                   "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
                          "bucket": {"name": "bucket", "arn": "arn:aws:s3:::bucket"},
                          "object": {"key": "in%2Fa+b%3D1.txt", "size": 1, "eTag": "e"}}}
    deliveries = route_notification(json.dumps({"Records": [moto_record]}), subscriptions)
    assert [function for function, _ in deliveries] == ["All"]
    record = deliveries[0][1]["Records"][0]
    # moto leaves out fields that AWS sends; the delivered record has them all.
    canonical = json.loads((EVENTS / "s3_put.json").read_text())["Records"][0]
    assert set(record) >= set(canonical)
    assert set(record["s3"]["object"]) >= set(canonical["s3"]["object"])
    assert set(record["s3"]["bucket"]) >= set(canonical["s3"]["bucket"])
    # Encoded as AWS does it: a space is +, = is %3D, but / stays (moto also encodes it as %2F).
    assert record["s3"]["object"]["key"] == "in/a+b%3D1.txt"


def test_the_retrain_schedule_is_read_from_the_template_and_none_disables_it():
    template = Path(__file__).resolve().parents[2] / "template.yaml"
    schedules = {s.event_id: s for s in load_stack_model(template, "local").schedules}
    assert set(schedules) == {"RetrainSchedule", "CompactSchedule"}
    schedule = schedules["RetrainSchedule"]
    assert (schedule.function, schedule.expression, schedule.enabled) == ("IngestFunction", "rate(1 day)", True)
    assert schedule.input == {"scheduled_training": True}
    assert schedules["CompactSchedule"].input == {"compact_events": True} and schedules["CompactSchedule"].enabled
    off = {s.event_id: s for s in load_stack_model(template, "local", parameters={"RetrainSchedule": "none"}).schedules}
    assert not off["RetrainSchedule"].enabled and off["CompactSchedule"].enabled
