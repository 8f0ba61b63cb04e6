"""The local stack's CloudWatch Logs subscription filters (infra/local/logs.py, model.py).

Filter patterns, the subscription event's encoding, batching, and how the template's
AWS::Logs::SubscriptionFilter resources are read. Delivery through a running stack is tested
in tests/integration/test_local_stack.py.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.local.intrinsics import TemplateError
from infra.local.logs import (
    FilterPatternError,
    LogSubscriptionDelivery,
    decode_subscription_event,
    encode_subscription_event,
    parse_filter_pattern,
)
from infra.local.model import LogSubscription, load_stack_model

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
SERVED = '{ $.record = "recommendation" }'
SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else 1

SERVED_LINE = json.dumps({
    "record": "recommendation", "recommendation_id": "0193a1b2c3d4e5f60718293a",
    "served_at": "2026-12-08T04:00:00.123Z", "surface": "user", "customer": "ab" * 32,
    "strategy": "personalized", "model_version": "v3", "items": ["i1", "i2"],
    "experiment": {"experiment_id": "exp-1", "arm": "control"},
})


# -- filter patterns -------------------------------------------------------------------------

def test_the_served_recommendations_pattern():
    pattern = parse_filter_pattern(SERVED)
    assert pattern.matches(SERVED_LINE) and pattern.matches(SERVED_LINE + "\n")  # Lambda keeps the newline
    assert pattern.matches('  {"record":"recommendation"}  ')
    for line in ('{"record": "Recommendation"}', '{"record": "recommendations"}', '{"record": "other"}',
                 '{"kind": "recommendation"}', '{"nested": {"record": "recommendation"}}',
                 '{"record": ["recommendation"]}', '["recommendation"]', '"recommendation"',
                 'record = "recommendation"', f"START RequestId: 1 {SERVED_LINE}", SERVED_LINE[:-1], ""):
        assert not pattern.matches(line), line


@pytest.mark.parametrize("pattern, line, expected", [
    ('{ $.a.b = "x" }', '{"a": {"b": "x"}}', True),
    ('{ $.a.b = "x" }', '{"a": {"b": "y"}}', False),
    ('{ $.a.b = "x" }', '{"a": "x"}', False),
    ('{ $.items[1] = "i2" }', '{"items": ["i1", "i2"]}', True),
    ('{ $.items[2] = "i2" }', '{"items": ["i1", "i2"]}', False),
    ("{ $.n = 5 }", '{"n": 5}', True),
    ("{ $.n = 5 }", '{"n": 5.0}', True),
    ("{ $.n = 5 }", '{"n": "5"}', False),
    ("{ $.n = 1 }", '{"n": true}', False),  # a boolean is not a number
    ("{ $.n > 4.5 }", '{"n": 5}', True),
    ("{ $.n <= -1 }", '{"n": -1}', True),
    ("{ $.n >= 1e3 }", '{"n": 999}', False),
    ("{ $.n != 5 }", '{"n": 6}', True),
    ("{ $.n != 5 }", '{"m": 6}', False),  # a missing field never matches
    ('{ $.s != "x" }', '{"s": "y"}', True),
    ('{ $.s != "x" }', '{"s": "x"}', False),
    ("{ $.ip = 10.0.* }", '{"ip": "10.0.3.4"}', True),
    ("{ $.ip = 10.0.* }", '{"ip": "10.1.3.4"}', False),
    ("{ $.kind = update }", '{"kind": "update"}', True),
    ('{ $.q = "say \\"hi\\"" }', '{"q": "say \\"hi\\""}', True),
    ('{ $.a = "x" && $.n > 1 }', '{"a": "x", "n": 2}', True),
    ('{ $.a = "x" && $.n > 1 }', '{"a": "x", "n": 1}', False),
    ('{ $.a = "x" || $.n > 1 }', '{"a": "y", "n": 2}', True),
    ('{ ($.a = "x" || $.a = "y") && $.n = 1 }', '{"a": "y", "n": 1}', True),
    ('{ ($.a = "x" || $.a = "y") && $.n = 1 }', '{"a": "z", "n": 1}', False),
])
def test_json_pattern_subset(pattern, line, expected):
    assert parse_filter_pattern(pattern).matches(line) is expected


@pytest.mark.parametrize("pattern", [
    "ERROR",  # a text pattern
    '"recommendation"',
    "[ip, user, status]",  # a space-delimited pattern
    "",
    "{ }",
    "{ $.a IS NULL }",
    "{ $.a NOT EXISTS }",
    "{ $.a IS TRUE }",
    "{ $.* = 1 }",
    '{ $.a = "x" && $.b = "y" || $.c = "z" }',  # precedence left to parentheses
    '{ $.a > "x" }',  # > compares numbers
    '{ $.a = "x*" }',  # wildcards are documented for unquoted values only
    "{ $.a = %ab+c% }",  # regular expressions
    '{ ($.a = "x" }',
    '{ $.a = }',
    '{ $.a "x" }',
    '{ $.a = "x" } extra',
])
def test_patterns_outside_the_subset_are_refused(pattern):
    with pytest.raises(FilterPatternError):
        parse_filter_pattern(pattern)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300 * SCALE, deadline=None)
@given(st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=6), st.sampled_from(["matching", "other", "absent"]),
       JSON_VALUES)
def test_property_a_json_object_matches_exactly_when_record_is_recommendation(document, case, other):
    document = dict(document)
    if case == "matching":
        document["record"] = "recommendation"
    elif case == "other":
        document["record"] = other
    else:
        document.pop("record", None)
    expected = document.get("record") == "recommendation" and isinstance(document.get("record"), str)
    pattern = parse_filter_pattern(SERVED)
    assert pattern.matches(json.dumps(document)) is expected
    assert pattern.matches(json.dumps(document, indent=1)) is expected  # the line's layout does not matter
    assert pattern.matches_object(document) is expected


@settings(max_examples=200 * SCALE, deadline=None)
@given(st.text())
def test_property_lines_that_are_not_json_objects_never_match(line):
    try:
        is_object = isinstance(json.loads(line), dict)
    except ValueError:
        is_object = False
    if not is_object:
        assert not parse_filter_pattern(SERVED).matches(line)


# -- the event -------------------------------------------------------------------------------

def test_encoding_round_trip_has_the_documented_shape():
    log_events = [{"id": "1", "timestamp": 1765166400123, "message": SERVED_LINE + "\n"},
                  {"id": "2", "timestamp": 1765166400124, "message": "ünïcode ✓\n"}]
    event = encode_subscription_event(owner="123456789012", log_group="/aws/lambda/tailor-local-RecommendFunction",
                                      log_stream="local/42", filter_names=["served"], log_events=log_events)
    canonical = json.loads((EVENTS / "cloudwatch_logs.json").read_text())
    assert set(event) == set(canonical) == {"awslogs"} and set(event["awslogs"]) == set(canonical["awslogs"])
    document = decode_subscription_event(event)
    assert document == {
        "messageType": "DATA_MESSAGE", "owner": "123456789012",
        "logGroup": "/aws/lambda/tailor-local-RecommendFunction", "logStream": "local/42",
        "subscriptionFilters": ["served"], "logEvents": log_events,
    }
    expected = decode_subscription_event(canonical)
    assert set(document) == set(expected)
    assert set(document["logEvents"][0]) == set(expected["logEvents"][0])


# -- batching --------------------------------------------------------------------------------

def _subscription(name="Served", source="RecommendFunction", destination="IngestFunction"):
    return LogSubscription(logical_id=name, name=f"tailor-local-{name}", source_function=source,
                           log_group=f"/aws/lambda/tailor-local-{source}", pattern=parse_filter_pattern(SERVED),
                           destination_function=destination)


class _Recorder:
    """A stand-in for the stack's asynchronous invoke: records the events, finishes on demand."""

    def __init__(self, finish_at_once=True):
        self.events: list[tuple[str, dict]] = []
        self.pending: list = []
        self.finish_at_once = finish_at_once

    def __call__(self, function, event, done):
        self.events.append((function, decode_subscription_event(event)))
        if self.finish_at_once:
            done()
        else:
            self.pending.append(done)


def test_lines_are_batched_per_worker_and_only_matching_ones_kept():
    recorder = _Recorder()
    delivery = LogSubscriptionDelivery([_subscription()], recorder, owner="123456789012", flush_seconds=60)
    listener = delivery.listener_for("RecommendFunction")
    assert delivery.listener_for("IngestFunction") is None  # nobody reads its log
    listener(11, SERVED_LINE + "\n")
    listener(11, "plain text\n")
    listener(11, '{"record": "other"}\n')
    listener(22, SERVED_LINE + "\n")
    listener(11, SERVED_LINE + "\n")
    assert delivery.pending() == (3, 0) and recorder.events == []
    assert delivery.flush() == 2
    by_stream = {document["logStream"]: document for _, document in recorder.events}
    assert {function for function, _ in recorder.events} == {"IngestFunction"}
    assert sorted(by_stream) == ["local/11", "local/22"]
    assert [e["message"] for e in by_stream["local/11"]["logEvents"]] == [SERVED_LINE + "\n"] * 2
    assert by_stream["local/22"]["subscriptionFilters"] == ["tailor-local-Served"]
    assert by_stream["local/22"]["logGroup"] == "/aws/lambda/tailor-local-RecommendFunction"
    ids = [e["id"] for _, document in recorder.events for e in document["logEvents"]]
    assert len(set(ids)) == len(ids) == 3 and all(isinstance(i, str) for i in ids)
    assert delivery.pending() == (0, 0)


def test_a_full_batch_goes_at_once_and_the_rest_within_the_flush_interval():
    recorder = _Recorder()
    delivery = LogSubscriptionDelivery([_subscription()], recorder, owner="1", flush_seconds=0.05, max_lines=3)
    listener = delivery.listener_for("RecommendFunction")
    for _ in range(4):
        listener(1, SERVED_LINE)
    assert [len(d["logEvents"]) for _, d in recorder.events] == [3]  # no flush thread yet
    delivery.start()
    try:
        deadline = time.monotonic() + 5
        while len(recorder.events) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [len(d["logEvents"]) for _, d in recorder.events] == [3, 1]
    finally:
        delivery.stop()


def test_drain_waits_for_the_destination_invocations_to_finish():
    recorder = _Recorder(finish_at_once=False)
    delivery = LogSubscriptionDelivery([_subscription()], recorder, owner="1", flush_seconds=60)
    delivery.listener_for("RecommendFunction")(1, SERVED_LINE)
    with pytest.raises(TimeoutError, match="1 invocation"):
        delivery.drain(timeout=0.1)  # flushed, but the invocation has not finished
    assert len(recorder.events) == 1
    threading.Timer(0.1, recorder.pending.pop()).start()
    delivery.drain(timeout=5)
    assert delivery.pending() == (0, 0)


def test_drain_follows_a_destination_that_is_itself_a_source():
    chained = LogSubscription(logical_id="Chained", name="chained", source_function="IngestFunction",
                              log_group="/aws/lambda/tailor-local-IngestFunction",
                              pattern=parse_filter_pattern(SERVED), destination_function="AuditFunction")
    seen = []

    def deliver(function, event, done):
        seen.append(function)
        if function == "IngestFunction":  # prints a matching line while it handles the batch
            threading.Timer(0.05, lambda: (delivery.listener_for("IngestFunction")(7, SERVED_LINE), done())).start()
        else:
            done()

    delivery = LogSubscriptionDelivery([_subscription(), chained], deliver, owner="1", flush_seconds=60)
    delivery.listener_for("RecommendFunction")(1, SERVED_LINE)
    delivery.drain(timeout=5)
    assert seen == ["IngestFunction", "AuditFunction"]


def test_a_failing_delivery_is_logged_and_not_waited_for():
    def deliver(function, event, done):
        raise RuntimeError("pool closed")

    delivery = LogSubscriptionDelivery([_subscription()], deliver, owner="1", flush_seconds=60)
    delivery.listener_for("RecommendFunction")(1, SERVED_LINE)
    delivery.drain(timeout=1)
    assert delivery.pending() == (0, 0)


# -- the template ----------------------------------------------------------------------------

def _template(tmp_path: Path, **filter_properties) -> Path:
    properties = {"LogGroupName": {"Ref": "SourceLogGroup"}, "FilterPattern": SERVED,
                  "DestinationArn": {"Fn::GetAtt": ["SinkFunction", "Arn"]}}
    properties.update(filter_properties)
    function = {"Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": ".", "Handler": "app.handler", "Runtime": "python3.12"}}
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "SourceFunction": function,
            "SinkFunction": function,
            "Stream": {"Type": "AWS::Kinesis::Stream"},
            "SourceLogGroup": {"Type": "AWS::Logs::LogGroup",
                               "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${SourceFunction}"}}},
            "OtherLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/custom/app"}},
            "Filter": {"Type": "AWS::Logs::SubscriptionFilter", "DependsOn": "Permission",
                       "Properties": {key: value for key, value in properties.items() if value is not None}},
            "Permission": {"Type": "AWS::Lambda::Permission",
                           "Properties": {"Action": "lambda:InvokeFunction", "Principal": "logs.amazonaws.com",
                                          "FunctionName": {"Fn::GetAtt": ["SinkFunction", "Arn"]},
                                          "SourceArn": {"Fn::GetAtt": ["SourceLogGroup", "Arn"]}}},
        },
    }
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template))
    return path


def test_subscription_filters_are_read_from_the_template(tmp_path):
    model = load_stack_model(_template(tmp_path))
    (subscription,) = model.log_subscriptions
    assert (subscription.logical_id, subscription.name) == ("Filter", "tailor-local-Filter")
    assert (subscription.source_function, subscription.destination_function) == ("SourceFunction", "SinkFunction")
    assert subscription.log_group == "/aws/lambda/tailor-local-SourceFunction"
    assert subscription.pattern.text == SERVED
    assert "AWS::Logs::SubscriptionFilter" not in model.not_emulated and not model.warnings
    named = load_stack_model(_template(tmp_path, FilterName="served", LogGroupName="/aws/lambda/tailor-local-SourceFunction"))
    assert named.log_subscriptions[0].name == "served"


@pytest.mark.parametrize("properties, message", [
    ({"FilterPattern": "ERROR"}, "only JSON patterns"),
    ({"FilterPattern": "{ $.a IS NULL }"}, "Filter: filter pattern"),
    ({"DestinationArn": {"Fn::GetAtt": ["Stream", "Arn"]}}, "only Lambda destinations"),
    ({"DestinationArn": "arn:aws:lambda:us-east-1:123456789012:function:elsewhere"}, "not a function of the template"),
    ({"LogGroupName": {"Ref": "OtherLogGroup"}}, "'/custom/app' is not the log group of a function"),
])
def test_filters_the_local_stack_cannot_deliver_fail_at_startup(tmp_path, properties, message):
    with pytest.raises(TemplateError, match=message):
        load_stack_model(_template(tmp_path, **properties))


def test_a_filter_without_an_invoke_permission_is_warned_about(tmp_path):
    path = _template(tmp_path)
    template = yaml.safe_load(path.read_text())
    del template["Resources"]["Permission"], template["Resources"]["Filter"]["DependsOn"]
    path.write_text(yaml.safe_dump(template))
    assert any("no AWS::Lambda::Permission" in warning for warning in load_stack_model(path).warnings)


def test_the_real_template_subscribes_ingest_to_served_recommendations():
    model = load_stack_model(ROOT / "template.yaml")
    (subscription,) = [s for s in model.log_subscriptions if s.logical_id == "ServedRecommendationsFilter"]
    assert (subscription.source_function, subscription.destination_function) == ("RecommendFunction", "IngestFunction")
    assert subscription.log_group == "/aws/lambda/tailor-local-RecommendFunction"
    assert subscription.pattern.matches(SERVED_LINE) and not model.warnings
