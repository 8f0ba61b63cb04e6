"""In-memory object store, state table and invoker with the adapters' behaviour: versioned objects,
values that come back as DynamoDB returns them (numbers as int or float, copies, not references),
conditional writes, all-or-nothing transactions and sort-key order within a partition."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from tailor.storage.dynamo import ConditionFailed


def _stored(value: Any) -> Any:
    """What DynamoDB keeps of a value: JSON-able data, numbers as int or float (via Decimal)."""
    def back(v: Any) -> Any:
        if isinstance(v, Decimal):
            return int(v) if v == v.to_integral_value() else float(v)
        if isinstance(v, dict):
            return {k: back(x) for k, x in v.items()}
        if isinstance(v, list):
            return [back(x) for x in v]
        return v
    return back(json.loads(json.dumps(value, default=str), parse_float=Decimal))


class FakeObjectStore:
    def __init__(self, bucket: str = "fake-bucket"):
        self.bucket = bucket
        self._versions: dict[str, list[bytes | None]] = {}  # None: a delete marker
        self._lock = threading.Lock()

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        with self._lock:
            self._versions.setdefault(key, []).append(bytes(body))

    def put_json(self, key: str, value: Any) -> None:
        self.put(key, json.dumps(value, ensure_ascii=False, default=str).encode(), "application/json")

    def get(self, key: str) -> bytes:
        versions = self._versions.get(key)
        if not versions or versions[-1] is None:
            raise KeyError(key)
        return versions[-1]

    def get_json(self, key: str) -> Any:
        return json.loads(self.get(key))

    def size(self, key: str) -> int | None:
        try:
            return len(self.get(key))
        except KeyError:
            return None

    def keys(self, prefix: str) -> Iterator[str]:
        live = sorted(k for k, v in self._versions.items() if k.startswith(prefix) and v and v[-1] is not None)
        yield from live

    def delete(self, key: str) -> None:
        with self._lock:
            if key in self._versions:
                self._versions[key].append(None)

    def versions(self, key: str) -> list[dict]:
        found = self._versions.get(key, [])
        return [{"VersionId": f"v{i}", "IsLatest": i == len(found) - 1} for i in range(len(found))]

    def replace(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> int:
        with self._lock:
            older = len(self._versions.get(key, []))
            self._versions[key] = [bytes(body)]
        return older

    def purge(self, key: str) -> int:
        with self._lock:
            return len(self._versions.pop(key, []))

    def purge_many(self, keys: list[str]) -> int:
        return sum(self.purge(key) for key in set(keys))

    def presign_get(self, key: str, *, expires_in: int) -> str:
        return f"https://{self.bucket}.fake/{key}?method=GET&expires={expires_in}"

    def presign_put(self, key: str, *, expires_in: int, content_type: str) -> str:
        return f"https://{self.bucket}.fake/{key}?method=PUT&expires={expires_in}&content-type={content_type}"


class FakeStateTable:
    def __init__(self) -> None:
        self._items: dict[tuple[str, str], dict] = {}
        self._lock = threading.RLock()

    def get(self, pk: str, sk: str) -> dict | None:
        item = self._items.get((pk, sk))
        return _stored(item) if item is not None else None

    def put(self, item: dict, *, only_if_new: bool = False) -> None:
        with self._lock:
            key = (item["pk"], item["sk"])
            if only_if_new and key in self._items:
                raise ConditionFailed(f"{key[0]}/{key[1]} already exists")
            self._items[key] = _stored(item)

    def update(self, pk: str, sk: str, *, set: dict | None = None, add: dict | None = None,
               only_if: dict | None = None, set_if_missing: dict | None = None) -> dict:
        with self._lock:
            current = self._items.get((pk, sk))
            if only_if and any((current or {}).get(name) != _stored(value) for name, value in only_if.items()):
                raise ConditionFailed(f"{pk}/{sk} did not match {only_if}")
            item = dict(current or {"pk": pk, "sk": sk})
            item.update(_stored(set or {}))
            for name, value in (set_if_missing or {}).items():
                item.setdefault(name, _stored(value))
            for name, value in (add or {}).items():
                item[name] = item.get(name, 0) + _stored(value)
            self._items[(pk, sk)] = item
            return _stored(item)

    def update_many(self, updates: list[dict], workers: int = 8) -> None:
        self.run_many(lambda table, update: table.update(**update), updates, workers)

    def run_many(self, work, items: list, workers: int = 8) -> list:
        """As the DynamoDB adapter: every item runs, then the first failure is raised."""
        results, failure = [], None
        for item in items:
            try:
                results.append(work(self, item))
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the other items
                failure = failure or exc
        if failure is not None:
            raise failure
        return results

    def _partition(self, pk: str, newest_first: bool) -> list[dict]:
        items = [item for (p, _), item in self._items.items() if p == pk]
        return [_stored(i) for i in sorted(items, key=lambda i: i["sk"], reverse=newest_first)]

    def query(self, pk: str, *, newest_first: bool = False, limit: int | None = None,
              consistent: bool = False) -> list[dict]:  # always consistent: one process, one lock
        items = self._partition(pk, newest_first)
        return items if limit is None else items[:limit]

    def query_page(self, pk: str, *, limit: int, newest_first: bool = False,
                   after_sk: str | None = None) -> tuple[list[dict], str | None]:
        items = self._partition(pk, newest_first)
        if after_sk is not None:
            items = [i for i in items if (i["sk"] < after_sk if newest_first else i["sk"] > after_sk)]
        page = items[:limit]
        return page, (str(page[-1]["sk"]) if len(page) == limit and len(items) > 0 else None)

    def delete(self, pk: str, sk: str) -> None:
        with self._lock:
            self._items.pop((pk, sk), None)

    def transact(self, *, new: Iterable[dict] = (), puts: Iterable[dict] = (),
                 adds: Iterable[tuple[str, str, dict, dict]] = ()) -> None:
        with self._lock:
            new, puts, adds = list(new), list(puts), list(adds)
            if any((item["pk"], item["sk"]) in self._items for item in new):
                raise ConditionFailed("an item that must be new already exists")
            for item in new + puts:
                self._items[(item["pk"], item["sk"])] = _stored(item)
            for pk, sk, set_fields, add_fields in adds:
                self.update(pk, sk, set=set_fields, add=add_fields)

    def put_many(self, items: Iterable[dict]) -> None:
        for item in items:
            self.put(item)


class FakeInvoker:
    """Records each asynchronous invocation instead of starting the training function."""

    def __init__(self) -> None:
        self.payloads: list[dict] = []

    def __call__(self, payload: dict) -> None:
        self.payloads.append(json.loads(json.dumps(payload)))


class FakeRecordStream:
    """A delivery stream that delivers each call's records as one object under `prefix` of `store`,
    as moto does (Firehose itself waits for its buffering interval or size first)."""

    def __init__(self, store: FakeObjectStore, prefix: str = "buffer/interactions/") -> None:
        self.store, self.prefix = store, prefix
        self.calls = 0

    def put(self, records: list[bytes]) -> None:
        self.calls += 1
        self.store.put(f"{self.prefix}0000/00/00/00/fake-stream-{self.calls:08d}", b"".join(records))
