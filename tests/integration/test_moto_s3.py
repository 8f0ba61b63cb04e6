"""moto's S3 made atomic per request (infra.local.moto_s3), as the local stack and the
concurrency tests use it. Without it this workload fails: 158 of 2,400 requests raised
``ValueError: I/O operation on closed file`` in one run (moto 5, 8 threads x 100 rounds)."""

from __future__ import annotations

import threading

import boto3

from harness import BUCKET
from infra.local.moto_s3 import make_s3_requests_atomic


def test_concurrent_puts_and_reads_of_one_key_all_succeed(aws, monkeypatch):
    make_s3_requests_atomic(monkeypatch.setattr)
    aws.s3.put_object(Bucket=BUCKET, Key="pointer.json", Body=b"0")
    errors: list[str] = []

    def work(worker: int) -> None:
        s3 = boto3.client("s3")
        for round_ in range(60):
            body = f"{worker}-{round_};".encode() * 100
            try:
                s3.put_object(Bucket=BUCKET, Key="pointer.json", Body=body)
                read = s3.get_object(Bucket=BUCKET, Key="pointer.json")["Body"].read()
                token = read[: read.index(b";") + 1]
                assert read == token * 100, "a torn value"  # one whole PUT's body, never a mix
                s3.head_object(Bucket=BUCKET, Key="pointer.json")
            except Exception as error:  # noqa: BLE001 - every failure is the finding
                errors.append(repr(error))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_wrapping_twice_wraps_once(monkeypatch):
    from moto.s3.responses import S3Response

    make_s3_requests_atomic(monkeypatch.setattr)
    wrapped = S3Response.key_response
    make_s3_requests_atomic(monkeypatch.setattr)
    assert S3Response.key_response is wrapped and wrapped.atomic
