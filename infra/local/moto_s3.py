"""moto's S3, one request at a time, as atomic as real S3.

Real S3 makes each request atomic: a PUT that replaces an object never breaks a GET of it that is
in flight. moto's backend does not when requests run on threads (its server answers each request
on a thread; tests call it from threads): a PUT that replaces a key closes the old value's buffer
while another request may still be reading it (``ValueError: I/O operation on closed file`` from
``FakeKey.etag``). Serialising moto's S3 handlers removes that race and keeps every race that is
Tailor's own (job records, model pointer, ingest ledger) — those live in DynamoDB or are decided
by conditional writes, not by moto's buffers.
"""

from __future__ import annotations

import threading
from typing import Callable

_LOCK = threading.RLock()
_HANDLERS = ("key_response", "bucket_response")


def make_s3_requests_atomic(set_attribute: Callable = setattr) -> None:
    """Wrap moto's S3 request handlers in one lock. Idempotent; tests pass
    ``monkeypatch.setattr`` so that the wrapping ends with the test."""
    from moto.s3.responses import S3Response  # moto is a local-stack and test dependency only

    for name in _HANDLERS:
        original = getattr(S3Response, name)
        if getattr(original, "atomic", False):
            continue

        def serialised(self, *args, _original=original, **kwargs):
            with _LOCK:
                return _original(self, *args, **kwargs)

        serialised.atomic = True
        set_attribute(S3Response, name, serialised)
