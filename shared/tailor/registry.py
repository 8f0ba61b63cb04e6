"""Versioned model artifacts, the promotion pointer, and the per-container serving cache.

- `models/<model>/<version>/<file>`: immutable artifacts of one version;
- `reports/<model>/<version>/`: the evaluation report (JSON, Markdown, PNG);
- `models/<model>/current.json`: the pointer serving follows, written last (promotion is one
  small write, rollback is writing it back);
- StateTable `MODEL#<model>` / `VERSION#<version>`: metrics and the promotion decision.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Generic, TypeVar

from .errors import NotFound, Unavailable
from .storage import ObjectStore, StateTable

# Which models exist, which dataset trains each, and whether this release can train it yet.
MODELS: dict[str, dict] = {
    "recommender": {"dataset": "interactions", "available": True},
    "sentiment": {"dataset": "reviews", "available": True},
}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_version() -> str:
    # Sortable by time; the suffix keeps two trainings within one second apart.
    import secrets

    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


class ModelRegistry:
    def __init__(self, store: ObjectStore, state: StateTable):
        self.store = store
        self.state = state

    # ---- writing (training job) ---------------------------------------------------------
    def save_version(self, model: str, version: str, artifacts: dict[str, bytes],
                     metrics: dict, report: dict[str, bytes], job_id: str | None = None) -> None:
        for name, body in artifacts.items():
            self.store.put(f"models/{model}/{version}/{name}", body)
        for name, body in report.items():
            content_type = {"json": "application/json", "md": "text/markdown", "png": "image/png"}.get(
                name.rsplit(".", 1)[-1], "application/octet-stream")
            self.store.put(f"reports/{model}/{version}/{name}", body, content_type)
        self.state.put({"pk": f"MODEL#{model}", "sk": f"VERSION#{version}", "model": model,
                        "version": version, "created_at": now_iso(), "metrics": metrics,
                        "job_id": job_id, "artifacts": sorted(artifacts),
                        "report_prefix": f"reports/{model}/{version}/"})

    def record_decision(self, model: str, version: str, promoted: bool, reason: str) -> None:
        self.state.update(f"MODEL#{model}", f"VERSION#{version}",
                          set={"promoted": promoted, "decision": reason, "decided_at": now_iso()})

    def promote(self, model: str, version: str, reason: str = "promoted by request") -> dict:
        if model not in MODELS:
            raise NotFound(f"unknown model {model!r}: models are {', '.join(MODELS)}")
        if not self.state.get(f"MODEL#{model}", f"VERSION#{version}"):
            raise NotFound(f"model {model} has no version {version!r}; GET /v1/models lists them")
        pointer = {"model": model, "version": version, "promoted_at": now_iso(), "reason": reason}
        self.store.put_json(f"models/{model}/current.json", pointer)  # the one write serving follows
        self.state.update(f"MODEL#{model}", f"VERSION#{version}",
                          set={"promoted": True, "last_promoted_at": pointer["promoted_at"]})
        return pointer

    def bump_revision(self, model: str, reason: str) -> dict | None:
        """The current version's artifacts were rewritten in place (privacy erase): a new
        `revision` on the pointer makes every serving container reload the same version."""
        pointer = self.current(model)
        if pointer is None:
            return None
        pointer = {**pointer, "revision": int(pointer.get("revision") or 0) + 1,
                   "revised_at": now_iso(), "revision_reason": reason}
        self.store.put_json(f"models/{model}/current.json", pointer)
        return pointer

    # ---- reading --------------------------------------------------------------------------
    def current(self, model: str) -> dict | None:
        try:
            return self.store.get_json(f"models/{model}/current.json")
        except KeyError:
            return None

    def version(self, model: str, version: str) -> dict | None:
        return self.state.get(f"MODEL#{model}", f"VERSION#{version}")

    def artifact(self, model: str, version: str, name: str) -> bytes:
        return self.store.get(f"models/{model}/{version}/{name}")

    def overview(self) -> list[dict]:
        out = []
        for model, info in MODELS.items():
            current = self.current(model)
            versions = self.state.query(f"MODEL#{model}", newest_first=True, limit=20)
            serving = next((v for v in versions if current and v.get("version") == current["version"]), None) or {}
            out.append({
                "model": model,
                "available": info["available"],
                "current_version": current["version"] if current else None,
                # Which candidate the current version serves (e.g. EASE on a small catalog) and why.
                "served": ((serving.get("metrics") or {}).get("served") or {}).get("name"),
                "decision": serving.get("decision"),
                "versions": [{k: v for k, v in item.items() if k not in ("pk", "sk", "model")}
                             | {"current": bool(current and item["version"] == current["version"])}
                             for item in versions],
            })
        return out


T = TypeVar("T")


class ModelCache(Generic[T]):
    """One loaded model per container: the pointer is re-read at most every `ttl` s, and a
    *serving stamp* (one small consistent DynamoDB read, `SERVING#<model>` / `STAMP`) is
    checked on every other request, so a change that must take effect at once (a privacy erase
    rewrote the artifacts: `ModelCache.signal`) reloads every warm container on its next request.

    If a newer version cannot be loaded, the last good model keeps serving (and the failure is
    remembered so it is not retried on every request). A failed stamp read keeps serving too.
    """

    STAMP_SK = "STAMP"
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
        return f"SERVING#{model}"

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
            versions = self.registry.state.query(f"MODEL#{self.model}", newest_first=True, limit=20)
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


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str).encode()


def promotion_decision(metric: str, score: float, baseline_name: str | None, baseline: float | None,
                       current: dict | None, margin: float, current_score: float | None = None) -> tuple[bool, str]:
    """The promotion gate: beat the baseline on validation, and do not fall more than `margin`
    (relative) below the current version: its score on this candidate's own validation data when
    the trainer measured it (`current_score`), else the score it was promoted with."""
    if baseline is not None and not score > baseline:
        return False, (f"kept, not promoted: validation {metric} {score:.4f} does not beat "
                       f"{baseline_name} ({baseline:.4f})")
    gate = (current or {}).get("metrics", {}).get("gate") or {}
    if current is not None and current_score is not None:
        gate = {"metric": metric, "score": current_score}
        if score < current_score * (1 - margin):
            return False, (f"kept, not promoted: validation {metric} {score:.4f} is more than {margin:.0%} below "
                           f"the current version {current['version']} on the same validation data ({current_score:.4f})")
        return True, (f"promoted: validation {metric} {score:.4f} beats {baseline_name} ({baseline:.4f}), and the "
                      f"current version {current['version']} reads {current_score:.4f} on the same validation data"
                      if baseline is not None else
                      f"promoted: validation {metric} {score:.4f}; the current version reads {current_score:.4f} on it")
    if gate.get("metric") == metric and gate.get("score") is not None:
        floor = gate["score"] * (1 - margin)
        if score < floor:
            return False, (f"kept, not promoted: validation {metric} {score:.4f} is more than "
                           f"{margin:.0%} below the current version {current['version']} ({gate['score']:.4f})")
        return True, (f"promoted: validation {metric} {score:.4f} beats {baseline_name} "
                      f"({baseline:.4f}) and is within {margin:.0%} of the current version ({gate['score']:.4f})"
                      if baseline is not None else f"promoted: validation {metric} {score:.4f}")
    return True, (f"promoted: validation {metric} {score:.4f} beats {baseline_name} ({baseline:.4f}); "
                  "there was no current version" if baseline is not None else
                  f"promoted: validation {metric} {score:.4f}; there was no current version")
