"""Fixtures for integration tests; the helpers live in harness.py."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from harness import BUCKET, TABLE, table_definition


@pytest.fixture
def aws(monkeypatch):
    """A fresh, empty AWS account holding the template's bucket and table."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "DATA_BUCKET": BUCKET, "STATE_TABLE": TABLE,
                       "TRAIN_FUNCTION_NAME": "tailor-test-train", "MAX_UPLOAD_MB": "5",
                       "POWERTOOLS_LOG_LEVEL": "WARNING"}.items():
        monkeypatch.setenv(key, value)
    from tailor import services

    services.reset()
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("dynamodb").create_table(TableName=TABLE, **table_definition())
        yield SimpleNamespace(s3=boto3.client("s3"), bucket=BUCKET, table=TABLE)
    services.reset()


