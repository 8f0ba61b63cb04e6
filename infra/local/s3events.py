"""Deliver S3 ObjectCreated (and other) notifications to the functions that subscribe to them.

moto sends each bucket's notifications to one local SQS queue (see provision.py); a background
thread long-polls that queue and, for every record, invokes asynchronously each function whose
template `Type: S3` event matches - one `{"Records": [record]}` event per function, as S3 does.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import uuid
from collections.abc import Callable
from urllib.parse import quote_plus, unquote_plus

from .model import S3Subscription

log = logging.getLogger("infra.local")


def complete_record(record: dict) -> dict:
    """Make moto's S3 event record look like the one AWS sends.

    - Fill in the fields moto leaves out; parsers such as Powertools' `S3Model` require them
      (userIdentity, requestParameters, ...).
    - Encode the key as AWS does: form-encoded (a space is `+`) but with `/` left as is, where
      moto also encodes `/` as `%2F`. Either way `unquote_plus` gives the real key back.
    """
    record.setdefault("userIdentity", {"principalId": "AWS:LOCAL"})
    record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
    record.setdefault("responseElements", {"x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                                           "x-amz-id-2": uuid.uuid4().hex})
    s3 = record.setdefault("s3", {})
    s3.setdefault("bucket", {}).setdefault("ownerIdentity", {"principalId": "LOCAL"})
    s3_object = s3.setdefault("object", {})
    s3_object.setdefault("sequencer", f"{uuid.uuid4().int % 16**16:016X}")
    if "key" in s3_object:
        s3_object["key"] = quote_plus(unquote_plus(s3_object["key"]), safe="/")
    return record


def route_notification(body: str, subscriptions: list[S3Subscription]) -> list[tuple[str, dict]]:
    """(function logical id, event) pairs for one notification message; [] for S3's test event."""
    message = json.loads(body)
    if message.get("Event") == "s3:TestEvent":  # sent once when the notification is configured
        return []
    deliveries = []
    for record in message.get("Records", []):
        bucket = record["s3"]["bucket"]["name"]
        key = record["s3"]["object"]["key"]  # still URL-encoded, as the handler will see it
        for subscription in subscriptions:
            if subscription.matches(bucket, record["eventName"], key):
                deliveries.append((subscription.function, {"Records": [complete_record(copy.deepcopy(record))]}))
    return deliveries


class S3EventPump:
    """Background thread: local notification queue -> asynchronous function invocations."""

    def __init__(self, sqs, queue_url: str, subscriptions: list[S3Subscription],
                 deliver: Callable[[str, dict], None], wait_seconds: int = 1) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._subscriptions = subscriptions
        self._deliver = deliver
        self._wait_seconds = wait_seconds  # bounds how long stop() waits for the last poll
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="s3-events")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=self._wait_seconds + 5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                response = self._sqs.receive_message(
                    QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=self._wait_seconds)
            except Exception as exc:  # moto going away at shutdown, or a transient error
                if not self._stopping.is_set():
                    log.warning("S3 event queue poll failed: %s", exc)
                    self._stopping.wait(1)
                continue
            for message in response.get("Messages", []):
                try:
                    for function, event in route_notification(message["Body"], self._subscriptions):
                        self._deliver(function, event)
                except Exception:
                    log.exception("could not deliver S3 notification %s", message["Body"][:500])
                # Delivery is handing the event to an asynchronous invocation; failures of the
                # function itself are retried (or dead-lettered) by the invoker, not redelivered here.
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
