"""The state table in DynamoDB: the one adapter that knows DynamoDB's call shapes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import boto3
from botocore.exceptions import ClientError

from tailor.storage.aws import BOTO_CONFIG


def _to_dynamo(value: Any) -> Any:
    # DynamoDB wants Decimal, not float; a JSON round trip converts nested values in one go.
    return json.loads(json.dumps(value, default=str), parse_float=Decimal)


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def _update_expression(set_fields: dict, add_fields: dict, default_fields: dict | None = None) -> dict:
    """`SET #a = :a, ... ADD #b :b, ...` with placeholder names (attribute names may be reserved words).
    `default_fields` are SET only where the attribute does not exist yet (`if_not_exists`)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    clauses = []
    sets = [f"#SET{i} = :SET{i}" for i in range(len(set_fields))]
    sets += [f"#DEF{i} = if_not_exists(#DEF{i}, :DEF{i})" for i in range(len(default_fields or {}))]
    adds = [f"#ADD{i} :ADD{i}" for i in range(len(add_fields))]
    for tag, fields in (("SET", set_fields), ("DEF", default_fields or {}), ("ADD", add_fields)):
        for i, (name, value) in enumerate(fields.items()):
            names[f"#{tag}{i}"] = name
            values[f":{tag}{i}"] = _to_dynamo(value)
    for verb, parts in (("SET", sets), ("ADD", adds)):
        if parts:
            clauses.append(f"{verb} " + ", ".join(parts))
    return {"UpdateExpression": " ".join(clauses), "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values}


class ConditionFailed(Exception):
    """A conditional write lost: the item already existed (or changed)."""


# A few updates go one after another: a hop to the worker threads costs more than it saves.
SEQUENTIAL_UPDATES = 3


class StateTable:
    """The single DynamoDB table (keys `pk`, `sk`) holding jobs, ledgers, stats and registry."""

    def __init__(self, table_name: str, resource: Any = None):
        self.table = (resource or boto3.resource("dynamodb", config=BOTO_CONFIG)).Table(table_name)

    def get(self, pk: str, sk: str) -> dict | None:
        item = self.table.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")
        return _from_dynamo(item) if item else None

    def put(self, item: dict, *, only_if_new: bool = False) -> None:
        kwargs: dict[str, Any] = {"Item": _to_dynamo(item)}
        if only_if_new:
            kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
        try:
            self.table.put_item(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConditionFailed(f"{item['pk']}/{item['sk']} already exists") from exc
            raise

    def update(self, pk: str, sk: str, *, set: dict | None = None, add: dict | None = None,
               only_if: dict | None = None, set_if_missing: dict | None = None) -> dict:
        """SET and ADD attributes atomically; `only_if` = {attr: expected value} guards the write."""
        kwargs: dict[str, Any] = {"Key": {"pk": pk, "sk": sk}, "ReturnValues": "ALL_NEW",
                                  **_update_expression(set or {}, add or {}, set_if_missing)}
        names, values = kwargs["ExpressionAttributeNames"], kwargs["ExpressionAttributeValues"]
        if only_if:
            conditions = []
            for i, (name, value) in enumerate(only_if.items()):
                names[f"#C{i}"] = name
                values[f":C{i}"] = _to_dynamo(value)
                conditions.append(f"#C{i} = :C{i}")
            kwargs["ConditionExpression"] = " AND ".join(conditions)
        try:
            return _from_dynamo(self.table.update_item(**kwargs)["Attributes"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConditionFailed(f"{pk}/{sk} did not match {only_if}") from exc
            raise

    def update_many(self, updates: list[dict], workers: int = 8) -> None:
        """Independent updates (each the keyword arguments of `update`), several at a time: one
        round trip each, so a batch of hundreds takes a fraction of a second instead of seconds.
        boto3 resources are not thread-safe, hence one per worker thread; the threads and their
        resources live as long as this table (a warm container), because creating a resource
        costs tens of ms: per call, it made a one-event ingest take half a second."""
        self.run_many(lambda table, update: table.update(**update), updates, workers)

    def run_many(self, work: Callable[[Any, Any], Any], items: list, workers: int = 8) -> list:
        """`work(table, item)` for every item, several at a time, each worker thread with a table
        of its own (see `update_many`); the results in order. Every item runs even when one
        fails; then the first failure is raised."""
        if len(items) <= SEQUENTIAL_UPDATES or workers <= 1:
            return [work(self, item) for item in items]
        from concurrent.futures import wait

        pool = self._pool(workers)
        futures = [pool.submit(lambda item=item: work(self._worker_table(), item)) for item in items]
        wait(futures)
        return [future.result() for future in futures]  # re-raises the first failure

    def _pool(self, workers: int):
        import threading
        from concurrent.futures import ThreadPoolExecutor

        pool = getattr(self, "_workers", None)
        if pool is None:
            self._workers, self._worker_tables = ThreadPoolExecutor(max_workers=workers), threading.local()
            pool = self._workers
        return pool

    def _worker_table(self) -> StateTable:
        local = self._worker_tables
        if not hasattr(local, "table"):
            local.table = StateTable(self.table.name, boto3.session.Session().resource("dynamodb", config=BOTO_CONFIG))
        return local.table

    def query(self, pk: str, *, newest_first: bool = False, limit: int | None = None,
              consistent: bool = False) -> list[dict]:
        """The partition's items in sort-key order; `consistent` reads what every write acknowledged
        before the call (twice the read cost; attribution's join needs it)."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": pk},
            "ScanIndexForward": not newest_first,
            "ConsistentRead": consistent,
        }
        items: list[dict] = []
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - len(items)
            page = self.table.query(**kwargs)
            items.extend(_from_dynamo(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page or (limit is not None and len(items) >= limit):
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def query_page(self, pk: str, *, limit: int, newest_first: bool = False,
                   after_sk: str | None = None) -> tuple[list[dict], str | None]:
        """One page of a partition: up to `limit` items after sort key `after_sk`, and the sort
        key to continue from (None when the partition has no more)."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": pk},
            "ScanIndexForward": not newest_first,
            "Limit": limit,
        }
        if after_sk is not None:
            kwargs["ExclusiveStartKey"] = {"pk": pk, "sk": after_sk}
        page = self.table.query(**kwargs)
        items = [_from_dynamo(i) for i in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return items, (str(last["sk"]) if last and len(items) == limit else None)

    def delete(self, pk: str, sk: str) -> None:
        self.table.delete_item(Key={"pk": pk, "sk": sk})

    def transact(self, *, new: Iterable[dict] = (), puts: Iterable[dict] = (),
                 adds: Iterable[tuple[str, str, dict, dict]] = ()) -> None:
        """All or nothing: `new` items must not exist yet; `adds` are (pk, sk, set, add) updates.

        Raises ConditionFailed when an item in `new` already exists (nothing is written then).
        """
        # The resource's client (un)marshals plain Python values itself: no TypeSerializer here.
        actions: list[dict] = []
        for item, guarded in [(i, True) for i in new] + [(i, False) for i in puts]:
            put: dict[str, Any] = {
                "TableName": self.table.name,
                "Item": _to_dynamo(item),
            }
            if guarded:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            actions.append({"Put": put})
        for pk, sk, set_fields, add_fields in adds:
            actions.append({"Update": {"TableName": self.table.name, "Key": {"pk": pk, "sk": sk},
                                       **_update_expression(set_fields, add_fields)}})
        try:
            self.table.meta.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if "ConditionalCheckFailed" in reasons:
                    raise ConditionFailed("an item that must be new already exists") from exc
            raise

    def put_many(self, items: Iterable[dict]) -> None:
        """BatchWriteItem, 25 at a time; a later item with the same key wins (DynamoDB refuses a
        request holding one key twice, and boto3's buffer drops the earlier one)."""
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for item in items:
                batch.put_item(Item=_to_dynamo(item))
