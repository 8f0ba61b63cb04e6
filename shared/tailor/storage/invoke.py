"""Asynchronous invocation of another function (the training function)."""

from __future__ import annotations

import json
from typing import Any

import boto3


class LambdaInvoker:
    """Fire-and-forget invocation of another function (boto3 honours AWS_ENDPOINT_URL_LAMBDA locally)."""

    def __init__(self, function_name: str, client: Any = None):
        self.function_name = function_name
        self.client = client or boto3.client("lambda")

    def __call__(self, payload: dict) -> None:
        self.client.invoke(FunctionName=self.function_name, InvocationType="Event",
                           Payload=json.dumps(payload).encode())
