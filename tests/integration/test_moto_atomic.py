"""moto's S3 and DynamoDB made atomic per request (infra.local.moto_atomic), as the local
stack and the concurrency tests use them. Without it these workloads fail: 158 of 2,400 S3
requests raised ``ValueError: I/O operation on closed file`` in one run (moto 5, 8 threads x
100 rounds); without it the DynamoDB workload let two threads win the same conditional put
(73 winners for 60 items in one run)."""

from __future__ import annotations

import sys
from functools import partial

import boto3
from harness import BUCKET, TABLE, run_threads

from infra.local.moto_atomic import make_requests_atomic


def key(pk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": "-"}}


def test_concurrent_puts_and_reads_of_one_key_all_succeed(aws, monkeypatch):
    make_requests_atomic(monkeypatch.setattr)
    aws.s3.put_object(Bucket=BUCKET, Key="pointer.json", Body=b"0")

    def work(worker: int) -> None:
        s3 = boto3.client("s3")
        for round_ in range(60):
            body = f"{worker}-{round_};".encode() * 100
            s3.put_object(Bucket=BUCKET, Key="pointer.json", Body=body)
            read = s3.get_object(Bucket=BUCKET, Key="pointer.json")["Body"].read()
            token = read[: read.index(b";") + 1]
            assert read == token * 100, "a torn value"  # one whole PUT's body, never a mix
            s3.head_object(Bucket=BUCKET, Key="pointer.json")

    assert run_threads([partial(work, w) for w in range(8)]) == []


def dynamodb_workload(rounds: int) -> tuple[list[dict], int, list[str]]:
    """Writers create items with one UpdateItem (ADD + SET) while readers poll them, and four
    threads race to create the same items with a conditional put. Returns the half-made items
    the readers saw, how many conditional puts succeeded (one per item when atomic) and the
    errors raised."""
    half_made: list[dict] = []
    created = []

    def writer(worker: int) -> None:
        client = boto3.client("dynamodb")
        for round_ in range(rounds):
            client.update_item(TableName=TABLE, Key=key(f"job#{worker}-{round_}"),
                               UpdateExpression="ADD attempts :one SET kind = :kind, note = :note",
                               ExpressionAttributeValues={":one": {"N": "1"}, ":kind": {"S": "job"},
                                                          ":note": {"S": "x" * 200}})

    def reader(worker: int) -> None:
        client = boto3.client("dynamodb")
        for round_ in range(rounds):
            for _ in range(3):
                item = client.get_item(TableName=TABLE, Key=key(f"job#{worker}-{round_}")).get("Item")
                if item is not None and not {"attempts", "kind", "note"} <= set(item):
                    half_made.append(item)

    def racer(worker: int) -> None:
        client = boto3.client("dynamodb")
        for round_ in range(rounds):
            try:
                client.put_item(TableName=TABLE, Item={**key(f"lock#{round_}"), "owner": {"N": str(worker)}},
                                ConditionExpression="attribute_not_exists(pk)")
                created.append(round_)
            except client.exceptions.ConditionalCheckFailedException:
                pass

    errors = run_threads([partial(writer, 0), partial(writer, 1), partial(reader, 0), partial(reader, 1),
                          *(partial(racer, w) for w in range(4))])
    return half_made, len(created), errors


def test_dynamodb_updates_are_seen_whole_and_conditional_puts_win_once(aws, monkeypatch):
    make_requests_atomic(monkeypatch.setattr)
    # Switch threads every microsecond rather than every 5 ms: the races are windows of a few
    # Python lines, which a busy CI machine hits now and then and this test hits every run.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        half_made, created, errors = dynamodb_workload(rounds=60)
    finally:
        sys.setswitchinterval(interval)
    assert errors == [] and half_made == []
    assert created == 60  # one winner per lock item, as on DynamoDB


def test_wrapping_twice_wraps_once(monkeypatch):
    from moto.dynamodb.responses import DynamoHandler
    from moto.s3.responses import S3Response

    make_requests_atomic(monkeypatch.setattr)
    wrapped = S3Response.key_response, DynamoHandler.call_action
    make_requests_atomic(monkeypatch.setattr)
    assert (S3Response.key_response, DynamoHandler.call_action) == wrapped
    assert all(handler.atomic for handler in wrapped)


def test_a_partition_local_query_answers_what_moto_answers_without_reading_the_table(aws, monkeypatch):
    from moto.dynamodb.models.table import Table

    from infra.local.moto_atomic import make_queries_partition_local
    from tailor.storage.dynamo import StateTable

    table = StateTable(TABLE)
    for partition in range(40):
        table.put_many({"pk": f"P#{partition}", "sk": f"{n:04d}", "n": n} for n in range(50))
    make_requests_atomic(monkeypatch.setattr)
    make_queries_partition_local(monkeypatch.setattr)  # idempotent: a local stack may have applied it
    whole_table_reads = []
    original = Table.all_items
    monkeypatch.setattr(Table, "all_items", lambda self: whole_table_reads.append(1) or original(self))
    assert [r["n"] for r in table.query("P#7")] == list(range(50))
    assert [r["sk"] for r in table.query("P#7", newest_first=True, limit=5)] == ["0049", "0048", "0047", "0046", "0045"]
    assert len(table.query("P#39", limit=60)) == 50 and table.query("NONE") == []
    assert whole_table_reads == []  # moto itself sorts all 2,000 items for each of these
