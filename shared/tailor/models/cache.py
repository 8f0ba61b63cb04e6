"""The per-container serving cache: which model version answers, reloaded when the pointer moves."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from tailor.core.clock import now_iso
from tailor.core.errors import Unavailable
from tailor.models.registry import ModelRegistry
from tailor.storage import keys
from tailor.storage.dynamo import StateTable

T = TypeVar("T")


class ModelCache(Generic[T]):
    """One loaded model per container: the pointer is re-read at most every `ttl` s, and a
    *serving stamp* (one small consistent DynamoDB read, `SERVING#<model>` / `STAMP`) is
    checked on every other request, so a change that must take effect at once (a privacy erase
    rewrote the artifacts: `ModelCache.signal`) reloads every warm container on its next request.

    If a newer version cannot be loaded, the last good model keeps serving (and the failure is
    remembered so it is not retried on every request). A failed stamp read keeps serving too.
    """

    STAMP_SK = keys.STAMP_SK
    STAMPED_MODELS = ("recommender",)  # models whose artifacts hold customers (an erase rewrites them)

    def __init__(self, registry: ModelRegistry, model: str, loader: Callable[[ModelRegistry, str], T],
                 ttl: float = 60.0, clock: Callable[[], float] = time.monotonic, check_stamp: bool | None = None):
        self.registry, self.model, self.loader, self.ttl, self.clock = registry, model, loader, ttl, clock
        # By default only the recommender, whose artifacts hold customers (an erase rewrites them):
        # the sentiment model holds no customer data, so its requests skip the read.
        self.check_stamp = (model in self.STAMPED_MODELS) if check_stamp is None else check_stamp
        self._lock = threading.Lock()
        self._loaded: T | None = None
        self._version: str | None = None
        self._revision: int = 0  # bumped on the pointer when artifacts are rewritten in place (erase)
        self._checked_at: float | None = None
        self._stamp: str | None = None  # the serving stamp seen at the last pointer read
        self.last_error: str | None = None
        self.fallback_from: str | None = None  # the current version that could not be loaded
        self._expired_version: str | None = None

    @staticmethod
    def stamp_pk(model: str) -> str:
        return keys.serving_pk(model)

    @classmethod
    def signal(cls, state: StateTable, model: str, reason: str) -> str:
        """Tell every warm container to re-read the pointer on its next request (write after the
        pointer itself). Returns the new stamp."""
        import secrets

        stamp = now_iso() + "-" + secrets.token_hex(4)
        state.put({"pk": cls.stamp_pk(model), "sk": cls.STAMP_SK, "stamp": stamp, "reason": reason})
        return stamp

    def _read_stamp(self) -> str | None:
        try:
            item = self.registry.state.get(self.stamp_pk(self.model), self.STAMP_SK)
        except Exception:  # storage hiccup: keep serving what we have
            return self._stamp
        return None if item is None else str(item.get("stamp"))

    def get(self) -> tuple[T, str]:
        with self._lock:
            now = self.clock()
            # Until a model is loaded, look every time: the first promotion should serve at once.
            if self._loaded is None or self._checked_at is None or now - self._checked_at >= self.ttl:
                self._checked_at = now
                self._stamp = self._read_stamp() if self.check_stamp else None  # before the pointer
                self._refresh()
            elif self.check_stamp:
                stamp = self._read_stamp()
                if stamp != self._stamp:
                    self._checked_at, self._stamp = now, stamp
                    self._refresh()
            if self._loaded is None:
                raise Unavailable(self.last_error or
                                  f"no {self.model} model has been trained yet: start one with "
                                  f'POST /v1/training-jobs {{"models": ["{self.model}"]}}')
            return self._loaded, self._version  # type: ignore[return-value]

    def expire(self) -> None:
        """Re-read the pointer on the next request (e.g. after an erase rewrote the artifacts)."""
        with self._lock:
            self._checked_at = None
            self._expired_version, self._version = self._version, None

    def _refresh(self) -> None:
        try:
            pointer = self.registry.current(self.model)
        except Exception as exc:  # storage hiccup: keep serving what we have
            self.last_error = f"could not read the {self.model} model pointer: {exc}"
            return
        revision = int(pointer.get("revision") or 0) if pointer else 0
        if not pointer or (pointer.get("version"), revision) == (self._version, self._revision):
            return
        try:
            self._loaded = self.loader(self.registry, pointer["version"])
            self._version, self._revision = pointer["version"], revision
            self.last_error = None
        except Exception as exc:
            self.last_error = f"{self.model} model {pointer.get('version')} could not be loaded: {exc}"
            if self._loaded is None:  # a cold container has no last good model of its own
                self._load_previous(pointer.get("version"))
            elif self._version is None:  # expire() asked for a reload that failed: the loaded model answers on
                self._version = self._expired_version

    def _load_previous(self, broken: str | None) -> None:
        """The current version's artifacts are missing or corrupt and nothing is loaded yet:
        serve the newest earlier promoted version that still loads rather than answer 503."""
        try:
            versions = self.registry.state.query(keys.model_pk(self.model), newest_first=True, limit=20)
        except Exception:
            return
        for item in versions:
            if item.get("version") == broken or not item.get("promoted"):
                continue
            try:
                self._loaded = self.loader(self.registry, item["version"])
            except Exception:
                continue
            self._version, self.fallback_from = item["version"], broken
            return
