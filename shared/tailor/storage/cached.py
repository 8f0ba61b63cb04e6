"""One state-table partition read through a short cache: what serving reads on every request but
admins change rarely (promotions, the running experiment). The partition is queried at most every
`ttl` seconds per container; a failed read keeps the last list, so recommendations go on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from tailor.core.errors import Invalid
from tailor.storage.ports import StateTablePort

T = TypeVar("T")


class CachedPartition(Generic[T]):
    """The items of partition `pk`, each through `parse`; a row it cannot parse (hand-edited) is skipped."""

    def __init__(self, state: StateTablePort, pk: str, parse: Callable[[dict], T], *, ttl: float,
                 clock: Callable[[], float] = time.monotonic):
        self.state, self.pk, self.parse, self.ttl, self.clock = state, pk, parse, ttl, clock
        self._lock = threading.Lock()
        self._cached: list[T] = []
        self._read_at: float | None = None

    def read(self) -> list[T]:
        """The partition now, in sort-key order (no cache)."""
        found = []
        for item in self.state.query(self.pk):
            try:
                found.append(self.parse(item))
            except (KeyError, ValueError, TypeError, Invalid):  # a hand-edited row: skipped, not a 500
                continue
        return found

    def cached(self) -> list[T]:
        with self._lock:
            if self._read_at is None or self.clock() - self._read_at >= self.ttl:
                self._read_at = self.clock()
                try:
                    self._cached = self.read()
                except Exception:  # storage hiccup: serve with what we had, retry after ttl
                    pass
            return self._cached

    def forget(self) -> None:
        """Read again on the next `cached()` (this container just changed the partition)."""
        with self._lock:
            self._read_at = None
