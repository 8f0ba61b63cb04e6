"""The event stream adapter: records to an Amazon Data Firehose delivery stream, which buffers them
and delivers them to the data bucket as a few large objects (`storage.keys.buffer_prefix`).

Firehose takes at most 500 records and 4 MiB per PutRecordBatch, and may refuse some records of
a call (throttling) while accepting the rest: those are sent again, and the call fails only if a
record is still refused after the retries. Firehose delivers at least once, so a reader de-duplicates
(datasets are de-duplicated on their key anyway).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from tailor.core.errors import Unavailable

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 4 * 1024 * 1024
RETRIES = 3


class StreamUnavailable(Unavailable):
    """Records could not be handed to the stream: the request is not acknowledged, send it again
    (records of it that did get through are de-duplicated)."""


def chunks(records: Sequence[bytes]) -> Iterator[list[bytes]]:
    """The records in calls of at most MAX_RECORDS_PER_CALL records and MAX_BYTES_PER_CALL bytes."""
    batch: list[bytes] = []
    size = 0
    for record in records:
        if batch and (len(batch) == MAX_RECORDS_PER_CALL or size + len(record) > MAX_BYTES_PER_CALL):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += len(record)
    if batch:
        yield batch


class RecordStream:
    """One delivery stream (`EVENT_STREAM`)."""

    def __init__(self, name: str, client: Any = None):
        import boto3

        self.name = name
        self.client = client or boto3.client("firehose")

    def put(self, records: Sequence[bytes]) -> None:
        for batch in chunks(records):
            pending = batch
            for attempt in range(RETRIES + 1):
                answer = self.client.put_record_batch(DeliveryStreamName=self.name,
                                                      Records=[{"Data": data} for data in pending])
                if not answer.get("FailedPutCount"):
                    break
                pending = [data for data, result in zip(pending, answer["RequestResponses"])
                           if result.get("ErrorCode")]
                if attempt < RETRIES:
                    time.sleep(0.05 * 2**attempt)
            else:
                raise StreamUnavailable(f"the event stream refused {len(pending)} record(s) after {RETRIES} "
                                        "retries; nothing needs undoing: send the same request again")
