"""moto's S3 and DynamoDB, one request at a time per service, as atomic as the real services.

Real S3 and DynamoDB make each request atomic: a PUT that replaces an object never breaks a GET
of it that is in flight, an update of an item is seen whole or not at all, and a conditional
write checks and writes in one step. moto's backends do not when requests run on threads (its
server answers each request on a thread; tests call it from threads):

- S3: a PUT that replaces a key closes the old value's buffer while another request may still be
  reading it (``ValueError: I/O operation on closed file`` from ``FakeKey.etag``);
- DynamoDB: ``UpdateItem`` of a new item first stores the bare key, then applies the update, so a
  concurrent ``GetItem`` can return the key alone (a local-stack test once read a job record
  without its ``attempts``); condition checks and writes are separate steps too.

Serialising moto's handlers, per service, removes those races and keeps every race that is
Tailor's own (job records, model pointer, ingest ledger), which the real services decide by
conditional writes.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

# service -> (module, response class, the request handlers to serialise)
_HANDLERS = {
    "s3": ("moto.s3.responses", "S3Response", ("key_response", "bucket_response")),
    "dynamodb": ("moto.dynamodb.responses", "DynamoHandler", ("call_action",)),
}
_LOCKS = {service: threading.RLock() for service in _HANDLERS}


def make_requests_atomic(set_attribute: Callable = setattr) -> None:
    """Wrap moto's S3 and DynamoDB request handlers in one lock per service. Idempotent; tests
    pass ``monkeypatch.setattr`` so that the wrapping ends with the test."""
    for service, (module, class_name, names) in _HANDLERS.items():
        # moto is a local-stack and test dependency only: imported when a stack or test asks.
        response_class = getattr(importlib.import_module(module), class_name)
        for name in names:
            original = getattr(response_class, name)
            if getattr(original, "atomic", False):
                continue

            def serialised(self, *args, _original=original, _lock=_LOCKS[service], **kwargs):
                with _lock:
                    return _original(self, *args, **kwargs)

            serialised.atomic = True
            set_attribute(response_class, name, serialised)


def make_queries_partition_local(set_attribute: Callable = setattr) -> None:
    """moto's Query on a table (no index) sorts every item of the table to pick one partition's:
    each Query costs O(table), so a local stack slowed down as the table grew (single-event ingest
    went from ~30 to ~95 ms over 800 events, trending counters and recent events being many small
    items). DynamoDB reads only the partition. While a base-table Query runs, `all_items` of that
    table returns the partition's items alone: the same result set, found in O(partition).

    Safe only under the DynamoDB lock of `make_requests_atomic` (the swap is per table object and
    undone before the lock is released), which is how the local stack runs moto."""
    from moto.dynamodb.models.table import Table

    original = Table.query
    if getattr(original, "partition_local", False):
        return

    def query(self, hash_key, *args, _original=original, **kwargs):
        if kwargs.get("index_name") or hash_key is None or not self.range_key_attr:
            return _original(self, hash_key, *args, **kwargs)
        partition = self.items.get(hash_key, {})
        self.all_items = lambda: list(partition.values())
        try:
            return _original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    query.partition_local = True
    set_attribute(Table, "query", query)
