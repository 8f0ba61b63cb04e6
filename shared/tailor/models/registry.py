"""Versioned model artifacts, the promotion pointer, and the per-container serving cache.

- `models/<model>/<version>/<file>`: immutable artifacts of one version;
- `reports/<model>/<version>/`: the evaluation report (JSON, Markdown, PNG);
- `models/<model>/current.json`: the pointer serving follows, written last (promotion is one
  small write, rollback is writing it back);
- StateTable `MODEL#<model>` / `VERSION#<version>`: metrics and the promotion decision.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tailor.core.clock import now_iso
from tailor.core.errors import NotFound
from tailor.storage import keys
from tailor.storage.dynamo import StateTable
from tailor.storage.s3 import ObjectStore

if TYPE_CHECKING:
    from tailor.privacy.erase import UserErasure

# Which models exist, which dataset trains each, and whether this release can train it yet.
MODELS: dict[str, dict] = {
    "recommender": {"dataset": "interactions", "available": True},
    "sentiment": {"dataset": "reviews", "available": True},
}






class ModelRegistry:
    def __init__(self, store: ObjectStore, state: StateTable):
        self.store = store
        self.state = state

    # ---- writing (training job) ---------------------------------------------------------
    def save_version(self, model: str, version: str, artifacts: dict[str, bytes],
                     metrics: dict, report: dict[str, bytes], job_id: str | None = None) -> None:
        for name, body in artifacts.items():
            self.store.put(keys.artifact_key(model, version, name), body)
        for name, body in report.items():
            content_type = {"json": "application/json", "md": "text/markdown", "png": "image/png"}.get(
                name.rsplit(".", 1)[-1], "application/octet-stream")
            self.store.put(keys.report_prefix(model, version) + name, body, content_type)
        self.state.put({"pk": keys.model_pk(model), "sk": keys.version_sk(version), "model": model,
                        "version": version, "created_at": now_iso(), "metrics": metrics,
                        "job_id": job_id, "artifacts": sorted(artifacts),
                        "report_prefix": keys.report_prefix(model, version)})

    def record_decision(self, model: str, version: str, promoted: bool, reason: str) -> None:
        self.state.update(keys.model_pk(model), keys.version_sk(version),
                          set={"promoted": promoted, "decision": reason, "decided_at": now_iso()})

    def promote(self, model: str, version: str, reason: str = "promoted by request") -> dict:
        if model not in MODELS:
            raise NotFound(f"unknown model {model!r}: models are {', '.join(MODELS)}")
        if not self.state.get(keys.model_pk(model), keys.version_sk(version)):
            raise NotFound(f"model {model} has no version {version!r}; GET /v1/models lists them")
        pointer = {"model": model, "version": version, "promoted_at": now_iso(), "reason": reason}
        self.store.put_json(keys.pointer_key(model), pointer)  # the one write serving follows
        self.state.update(keys.model_pk(model), keys.version_sk(version),
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
        self.store.put_json(keys.pointer_key(model), pointer)
        return pointer

    # ---- privacy erase ---------------------------------------------------------------------
    def erase_user(self, erasure: UserErasure) -> None:
        """The user's id in version reports (replaced by "[erased]") and their rows in every stored
        recommender version (`RecommenderArtifact.without_users`); when the current version was
        rewritten, a new pointer revision and serving stamp make every warm container reload it."""
        import io

        import numpy as np

        from tailor.models.cache import ModelCache
        from tailor.recommend.scorer import CONFIG_FILE, WEIGHTS_FILE, RecommenderArtifact

        erasure.text_objects(keys.REPORTS_PREFIX, erasure.scrub)
        user_id, current, rewritten_current = erasure.user_id, self.current("recommender"), False
        for key in [k for k in self.store.keys(keys.model_prefix("recommender")) if k.endswith("/" + WEIGHTS_FILE)]:
            weights = self.store.get(key)
            with np.load(io.BytesIO(weights), allow_pickle=False) as npz:
                if user_id not in set(npz["user_ids"].astype(str).tolist()):
                    continue
            prefix = key[: -len(WEIGHTS_FILE)]
            artifact = RecommenderArtifact.from_files({WEIGHTS_FILE: weights, CONFIG_FILE: self.store.get(prefix + CONFIG_FILE)})
            erasure.rewrite(key, artifact.without_users([user_id]).to_files()[WEIGHTS_FILE])
            erasure.report["models"]["versions_rewritten"] += 1
            if current and prefix == keys.model_prefix("recommender", current["version"]):
                rewritten_current = True
        if rewritten_current:
            pointer = self.bump_revision("recommender", "privacy erase")
            erasure.report["models"]["pointer_revision"] = pointer and pointer["revision"]
            # after the pointer: every warm serving container re-reads it on its next request
            ModelCache.signal(self.state, "recommender", "privacy erase")

    # ---- reading --------------------------------------------------------------------------
    def current(self, model: str) -> dict | None:
        try:
            return self.store.get_json(keys.pointer_key(model))
        except KeyError:
            return None

    def version(self, model: str, version: str) -> dict | None:
        return self.state.get(keys.model_pk(model), keys.version_sk(version))

    def artifact(self, model: str, version: str, name: str) -> bytes:
        return self.store.get(keys.artifact_key(model, version, name))

    def overview(self) -> list[dict]:
        out = []
        for model, info in MODELS.items():
            current = self.current(model)
            versions = self.state.query(keys.model_pk(model), newest_first=True, limit=20)
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






def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str).encode()


