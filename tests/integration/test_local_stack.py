"""The local stack as a whole, on a small fixture template (tests/fixtures/local_stack/).

The fixture functions echo what they receive, invoke each other with boto3, presign uploads and
record S3 events in DynamoDB, so these tests do not depend on Tailor's real handlers.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from infra.local import LocalStack

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_TEMPLATE = ROOT / "tests" / "fixtures" / "local_stack" / "template.yaml"
LEAKY = "LEAKY_TEST_VARIABLE"


@pytest.fixture(scope="module")
def stack():
    # Set in the stack's own process: no worker may see it (Lambda starts from a clean environment).
    os.environ[LEAKY] = "leaked"
    try:
        with LocalStack(FIXTURE_TEMPLATE, port=0, moto_port=0, max_workers=1, async_retry_delays=(0.2,)) as running:
            yield running
    finally:
        os.environ.pop(LEAKY, None)


def request(stack, method, path, body=None, headers=None, timeout=30):
    """(status, headers, body bytes) of one request to the local stack."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(stack.url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def call(stack, method, path, body=None, headers=None):
    status, _, raw = request(stack, method, path, body, headers)
    return status, json.loads(raw)


def aws(stack, service, **config):
    endpoint = stack.url if service == "lambda" else stack.moto_url
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(**config))


def wait_for(fetch, timeout=30.0):
    """Poll `fetch` until it returns something truthy; fail with the last value after `timeout` s."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not value and time.monotonic() < deadline:
        time.sleep(0.2)
        value = fetch()
    assert value, f"nothing after {timeout} s"
    return value


def record(stack, pk):
    item = aws(stack, "dynamodb").get_item(TableName=stack.health()["tables"]["FixtureTable"], Key={"pk": {"S": pk}})
    return item.get("Item")


# -- API Gateway ---------------------------------------------------------------------------

def test_path_query_headers_and_json_body_reach_the_handler_as_a_rest_proxy_event(stack):
    headers = {"Content-Type": "application/json", "X-Trace": "t1"}
    status, echo = call(stack, "POST", "/items", {"name": "shoe"}, headers)
    assert status == 200
    event = echo["event"]
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/items", "/items", "POST")
    assert json.loads(event["body"]) == {"name": "shoe"} and event["isBase64Encoded"] is False
    assert event["headers"]["Content-Type"] == "application/json" and event["headers"]["X-Trace"] == "t1"
    assert event["requestContext"]["stage"] == "local"  # the Api's StageName: !Ref Stage

    status, echo = call(stack, "GET", "/items/blue%20shoe?k=5&tag=a&tag=b")
    event = echo["event"]
    assert event["resource"] == "/items/{item_id}" and event["pathParameters"] == {"item_id": "blue%20shoe"}
    assert event["queryStringParameters"] == {"k": "5", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"k": ["5"], "tag": ["a", "b"]}
    assert event["body"] is None and event["requestContext"]["resourcePath"] == "/items/{item_id}"
    canonical = json.loads((ROOT / "tests" / "events" / "apigateway_rest_proxy.json").read_text())
    assert set(event) == set(canonical)


def test_most_specific_route_wins_and_greedy_paths_match_any_method(stack):
    assert call(stack, "GET", "/items/featured")[1]["event"]["resource"] == "/items/featured"
    status, echo = call(stack, "DELETE", "/files/a/b/c.txt")
    assert status == 200 and echo["event"]["pathParameters"] == {"path": "a/b/c.txt"}
    assert echo["event"]["httpMethod"] == "DELETE"


def test_binary_bodies_arrive_base64_encoded(stack):
    raw = bytes(range(256))
    _, echo = call(stack, "POST", "/items", raw, {"Content-Type": "text/plain"})  # not UTF-8
    assert echo["event"]["isBase64Encoded"] and base64.b64decode(echo["event"]["body"]) == raw
    _, echo = call(stack, "POST", "/items", b"plain ascii", {"Content-Type": "application/octet-stream"})
    assert echo["event"]["isBase64Encoded"]  # a declared BinaryMediaTypes entry
    assert base64.b64decode(echo["event"]["body"]) == b"plain ascii"


def test_response_status_headers_and_multi_value_headers_reach_the_client(stack):
    status, headers, raw = request(stack, "GET", "/items/x")
    assert status == 200 and headers["X-Echo"] == "yes" and headers["Content-Type"] == "application/json"
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert headers["x-amzn-RequestId"] == json.loads(raw)["context"]["aws_request_id"]


def test_lambda_context_and_layers(stack):
    _, echo = call(stack, "GET", "/items/x")
    context = echo["context"]
    assert context["function_name"] == "tailor-local-EchoFunction"
    assert context["invoked_function_arn"].endswith(":function:tailor-local-EchoFunction")
    assert context["memory_limit_in_mb"] == 256 and 0 < context["remaining_ms"] <= 20_000
    assert echo["layer"] == "fixture-layer"
    assert echo["cwd"] == str(FIXTURE_TEMPLATE.parent / "functions" / "echo")
    # An image function runs from its Dockerfile's folder and sees the layer folders its image copies.
    status, image = call(stack, "GET", "/image")
    image_folder = FIXTURE_TEMPLATE.parent / "functions" / "image"
    assert status == 200 and image == {"layer": "fixture-layer", "cwd": str(image_folder)}


def test_unknown_paths_are_404_and_other_methods_405_as_json_errors(stack):
    status, body = call(stack, "GET", "/nothing/here")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, headers, raw = request(stack, "PUT", "/items")
    assert status == 405 and headers["Allow"] == "POST"
    assert json.loads(raw)["error"]["code"] == "method_not_allowed"


def test_each_function_sees_only_its_own_environment(stack):
    _, echo = call(stack, "GET", "/items/x")
    env = echo["env"]
    assert env["ONLY_ECHO"] == "echo-only" and env["ONLY_TARGET"] is None
    assert (env["STAGE"], env["GREETING"], env["MODE"]) == ("local", "hello", "development")
    assert env["BUCKET"] == "fixture-local-123456789012" and env["TABLE"] == "tailor-local-FixtureTable"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "tailor-local-EchoFunction" and env["TAILOR_LOCAL"] == "1"
    assert env["AWS_ENDPOINT_URL_S3"] == stack.moto_url and env["AWS_ENDPOINT_URL_LAMBDA"] == stack.url
    assert env[LEAKY] is None
    _, jobs = call(stack, "POST", "/jobs", {"job_id": "env", "invocation_type": "RequestResponse"})
    assert jobs["payload"] == {"job_id": "env", "attempts": 1}
    item = record(stack, "job#env")
    assert item["only_target"]["S"] == "target-only" and item["only_echo"]["S"] == "<unset>"
    assert item["function_name"]["S"] == "tailor-local-TargetFunction"


# -- Lambda's Invoke API -----------------------------------------------------------------

def test_a_handler_starts_another_function_asynchronously_with_boto3(stack):
    status, body = call(stack, "POST", "/jobs", {"job_id": "async-1"})
    assert (status, body) == (202, {"status_code": 202})
    item = wait_for(lambda: record(stack, "job#async-1"))
    assert item["attempts"]["N"] == "1"
    status, body = call(stack, "GET", "/records/job%23async-1")
    assert status == 200 and body["only_target"] == "target-only"


def test_invoke_api_with_boto3(stack):
    client = aws(stack, "lambda", retries={"max_attempts": 1})
    result = client.invoke(FunctionName="tailor-local-TargetFunction", Payload=json.dumps({"job_id": "sync"}))
    assert result["StatusCode"] == 200 and "FunctionError" not in result
    assert json.loads(result["Payload"].read()) == {"job_id": "sync", "attempts": 1}
    # The logical id and an ARN name the same function.
    arn = "arn:aws:lambda:us-east-1:123456789012:function:tailor-local-TargetFunction"
    for name in ("TargetFunction", arn):
        assert client.invoke(FunctionName=name, InvocationType="Event",
                             Payload=json.dumps({"job_id": "by-name"}))["StatusCode"] == 202
    assert wait_for(lambda: (record(stack, "job#by-name") or {}).get("attempts", {}).get("N") == "2")
    failed = client.invoke(FunctionName="TargetFunction", Payload=json.dumps({"job_id": "sync-fail", "fail": True}))
    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert error["errorType"] == "RuntimeError" and "asked to fail" in error["errorMessage"]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="NoSuchFunction", Payload=b"{}")


def test_failed_async_invocations_are_retried_then_dead_lettered(stack):
    client = aws(stack, "lambda")
    client.invoke(FunctionName="TargetFunction", InvocationType="Event",
                  Payload=json.dumps({"job_id": "doomed", "fail": True}))
    sqs = aws(stack, "sqs")
    queue_url = sqs.get_queue_url(QueueName="tailor-local-FixtureDeadLetterQueue")["QueueUrl"]
    messages = wait_for(lambda: sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"],
                                                    WaitTimeSeconds=1).get("Messages"))
    assert json.loads(messages[0]["Body"]) == {"job_id": "doomed", "fail": True}
    assert "asked to fail" in messages[0]["MessageAttributes"]["ErrorMessage"]["StringValue"]
    assert record(stack, "job#doomed")["attempts"]["N"] == "3"  # Lambda's default: 2 retries


# -- S3 events -------------------------------------------------------------------------------

def test_presigned_put_triggers_the_matching_s3_functions_with_an_encoded_key(stack):
    key = "incoming/my file.csv"
    status, upload = call(stack, "POST", "/uploads", {"key": key})
    assert status == 200 and upload["upload_url"].startswith(stack.moto_url)
    put = urllib.request.Request(upload["upload_url"], data=b"a,b\n1,2\n", method="PUT",
                                 headers={"Content-Type": "text/csv"})
    with urllib.request.urlopen(put, timeout=30) as response:
        assert response.status == 200
    csv_item = wait_for(lambda: record(stack, f"csv#{key}"))
    audit_item = wait_for(lambda: record(stack, f"audit#{key}"))
    for item in (csv_item, audit_item):
        assert item["encoded_key"]["S"] == "incoming/my+file.csv"  # URL-encoded, as S3 sends it
        assert item["event_name"]["S"].startswith("ObjectCreated:")
        assert item["bucket"]["S"] == "fixture-local-123456789012" and item["record_count"]["N"] == "1"
    # Only the unfiltered subscription gets an object outside incoming/*.csv.
    s3 = aws(stack, "s3")
    s3.put_object(Bucket="fixture-local-123456789012", Key="other/notes.txt", Body=b"x")
    s3.put_object(Bucket="fixture-local-123456789012", Key="incoming/second.csv", Body=b"x")
    wait_for(lambda: record(stack, "audit#other/notes.txt") and record(stack, "csv#incoming/second.csv"))
    time.sleep(1)  # give a wrong delivery the time to show up
    assert record(stack, "csv#other/notes.txt") is None


# -- CloudWatch Logs subscriptions -----------------------------------------------------------

def _served(recommendation_id, **extra):
    return json.dumps({"record": "recommendation", "recommendation_id": recommendation_id, "surface": "user",
                       "items": ["i1", "i2"], "experiment": {"experiment_id": "e1", "arm": "control"}, **extra})


def test_printed_lines_matching_the_subscription_filter_reach_the_destination(stack, caplog):
    caplog.set_level(logging.INFO, logger="infra.local.LogSourceFunction")
    lines = [_served("rec-1"), "plain text, not JSON", json.dumps({"record": "other", "recommendation_id": "rec-x"}),
             json.dumps({"recommendation_id": "rec-y"}), _served("rec-2")]
    invocation = stack.invoke("LogSourceFunction", {"lines": lines})
    assert invocation.ok, invocation.error
    stack.drain_logs(timeout=30)  # no polling: every line matched so far has been delivered and handled
    for recommendation_id in ("rec-1", "rec-2"):
        item = record(stack, f"log#{recommendation_id}")
        assert item is not None and item["attempts"]["N"] == "1"
        envelope = json.loads(item["envelope"]["S"])
        assert envelope["messageType"] == "DATA_MESSAGE" and envelope["owner"] == "123456789012"
        assert envelope["logGroup"] == "/aws/lambda/tailor-local-LogSourceFunction"
        assert envelope["subscriptionFilters"] == ["tailor-local-LogSinkFilter"]
        assert envelope["logStream"].startswith("local/")
        log_event = json.loads(item["log_event"]["S"])
        assert set(log_event) == {"id", "timestamp", "message"} and isinstance(log_event["id"], str)
        assert log_event["message"].rstrip("\n") == _served(recommendation_id)
        assert abs(log_event["timestamp"] / 1000 - time.time()) < 60
    assert record(stack, "log#rec-x") is None and record(stack, "log#rec-y") is None
    # Matching or not, every line is still in the stack's log.
    assert all(line in caplog.text for line in lines)


def test_a_failing_destination_is_retried_before_drain_logs_returns(stack):
    assert stack.invoke("LogSourceFunction", {"lines": [_served("rec-fail", fail=True)]}).ok
    stack.drain_logs(timeout=30)
    assert record(stack, "log#rec-fail")["attempts"]["N"] == "3"  # Lambda's default: 2 retries
    sqs = aws(stack, "sqs")
    queue_url = sqs.get_queue_url(QueueName="tailor-local-FixtureDeadLetterQueue")["QueueUrl"]
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                                                 WaitTimeSeconds=1).get("Messages", [])]
    assert any("awslogs" in body for body in bodies)


def test_lines_of_a_function_invoked_through_the_lambda_api_are_delivered_too(stack):
    # A function's lines are matched before its invocation returns, whoever invoked it.
    client = aws(stack, "lambda", retries={"max_attempts": 1})
    result = client.invoke(FunctionName="tailor-local-LogSourceFunction",
                           Payload=json.dumps({"lines": [_served(f"rec-many-{n}") for n in range(50)]}))
    assert json.loads(result["Payload"].read()) == {"printed": 50}
    stack.drain_logs(timeout=30)
    assert all(record(stack, f"log#rec-many-{n}") for n in range(50))


# -- failures ----------------------------------------------------------------------------------

def test_handler_failures_become_502_and_the_function_keeps_serving(stack):
    _, ok = call(stack, "GET", "/faults/ok")
    status, body = call(stack, "GET", "/faults/raise")
    assert status == 502 and body["error"]["code"] == "internal_error" and "ValueError" in body["error"]["message"]
    assert call(stack, "GET", "/faults/ok")[1]["pid"] == ok["pid"]  # the same warm worker, still alive
    status, body = call(stack, "GET", "/faults/malformed")
    assert status == 502 and "body must be a string" in body["error"]["message"]
    status, body = call(stack, "GET", "/faults/exit")
    assert status == 502 and "exit status 3" in body["error"]["message"]
    status, body = call(stack, "GET", "/faults/sleep")
    assert status == 502 and "timed out after 2.00 seconds" in body["error"]["message"]
    status, again = call(stack, "GET", "/faults/ok")
    assert status == 200 and again["pid"] != ok["pid"]  # a fresh worker replaced the dead one


def test_api_gateway_gives_up_after_its_timeout(stack):
    stack.api_timeout = 0.5
    try:
        started = time.monotonic()
        status, body = call(stack, "GET", "/faults/sleep")
        assert status == 504 and body["error"]["code"] == "gateway_timeout"
        assert time.monotonic() - started < 2
    finally:
        stack.api_timeout = 29.0


# -- resources and lifecycle ---------------------------------------------------------------------

def test_health_and_provisioned_resources(stack):
    status, health = call(stack, "GET", "/__local/health")
    assert status == 200 and health["moto_url"] == stack.moto_url
    assert health["buckets"] == {"FixtureBucket": "fixture-local-123456789012"}
    assert health["tables"] == {"FixtureTable": "tailor-local-FixtureTable"}  # ProdOnlyTable's condition is false
    assert health["functions"]["TargetFunction"] == "tailor-local-TargetFunction"
    table = aws(stack, "dynamodb").describe_table(TableName="tailor-local-FixtureTable")["Table"]
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["by-kind"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert aws(stack, "dynamodb").list_tables()["TableNames"] == ["tailor-local-FixtureTable"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_command_line_stack_starts_and_stops_cleanly(tmp_path, signum):
    log_path = tmp_path / "stack.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local_stack", "--port", "0", "--moto-port", "0",
             "--template", str(FIXTURE_TEMPLATE)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = wait_for(lambda: [line for line in log_path.read_text().splitlines()
                                  if line.startswith("Tailor local stack ready on http://127.0.0.1:")], timeout=60)
        url = ready[0].rsplit(" ", 1)[1]
        with urllib.request.urlopen(url + "/items/x", timeout=30) as response:
            worker_pid = json.loads(response.read())["pid"]
        assert "GET /items/{item_id}" in log_path.read_text()  # the route list printed at startup
        process.send_signal(signum)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    output = log_path.read_text()
    assert "Traceback" not in output, output
    assert not _pid_alive(worker_pid)
