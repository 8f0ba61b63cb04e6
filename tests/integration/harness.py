"""Integration harness: moto's mock_aws with the template's own bucket and table definitions,
and the canonical events from `sam local generate-event` adapted per request."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote_plus

import boto3
from moto import mock_aws

from tests.fixtures.handlers import EVENTS, LambdaContext, api_event, call, load_handler  # noqa: F401 (re-exported)

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "tailor-test-data"
TABLE = "tailor-test-state"
STREAM = "tailor-test-events"


def table_definition() -> dict:
    from infra.template import load_template

    props = load_template(ROOT / "template.yaml")["Resources"]["StateTable"]["Properties"]
    return {k: props[k] for k in ("KeySchema", "AttributeDefinitions", "BillingMode")}


def stream_definition() -> dict:
    """The template's event stream, delivering to the test bucket (moto: one object per call)."""
    from infra.template import load_template

    props = load_template(ROOT / "template.yaml")["Resources"]["EventStream"]["Properties"]
    destination = props["ExtendedS3DestinationConfiguration"]
    return {"DeliveryStreamType": props["DeliveryStreamType"], "ExtendedS3DestinationConfiguration": {
        "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": destination["Prefix"],
        "RoleARN": "arn:aws:iam::123456789012:role/tailor-test-events"}}


def s3_event(key: str, size: int) -> dict:
    event = copy.deepcopy(json.loads((EVENTS / "s3_put.json").read_text()))
    record = event["Records"][0]
    record["s3"]["bucket"].update(name=BUCKET, arn=f"arn:aws:s3:::{BUCKET}")
    record["s3"]["object"].update(key=quote_plus(key, safe="/"), size=size)  # S3 sends keys URL-encoded
    return event


@contextmanager
def fresh_account(monkeypatch):
    """A fresh, empty AWS account holding the template's bucket, table and event stream, its S3 and
    DynamoDB atomic per request."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "DATA_BUCKET": BUCKET, "STATE_TABLE": TABLE,
                       "TRAIN_FUNCTION_NAME": "tailor-test-train", "MAX_UPLOAD_MB": "5", "EVENT_STREAM": STREAM,
                       "POWERTOOLS_LOG_LEVEL": "WARNING"}.items():
        monkeypatch.setenv(key, value)
    from infra.local.moto_atomic import make_requests_atomic
    from tailor import bootstrap

    # Services call DynamoDB from worker threads (update_many, run_many); moto in-process is not
    # thread-safe ("dictionary changed size during iteration"): one request at a time, as the local stack.
    make_requests_atomic(getattr(monkeypatch, "setattr", setattr))
    bootstrap.reset()
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("dynamodb").create_table(TableName=TABLE, **table_definition())
        boto3.client("firehose").create_delivery_stream(DeliveryStreamName=STREAM, **stream_definition())
        yield SimpleNamespace(s3=boto3.client("s3"), bucket=BUCKET, table=TABLE)
    bootstrap.reset()


def run_threads(workers: list[Callable[[], None]]) -> list[str]:
    """Run each worker on its own thread and return the errors they raised. An exception in a
    thread is otherwise only a pytest warning: the caller asserts this list is empty."""
    errors: list[str] = []

    def guarded(work: Callable[[], None]) -> None:
        try:
            work()
        except Exception as error:  # noqa: BLE001 - every failure is the finding
            errors.append(repr(error))

    threads = [threading.Thread(target=guarded, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
