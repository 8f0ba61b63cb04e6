"""A model version's evaluation report over the API: `GET /v1/models/{model}/versions/{version}/report`.

Training saves each version's report under `reports/<model>/<version>/` in the data bucket
(tailor.models.registry: report.json, report.md and PNG plots). This reads them back: the JSON
content, the Markdown text, and a presigned GET link per plot (the bucket stays private).
"""

from __future__ import annotations

from tailor.core.errors import NotFound
from tailor.models.registry import MODELS, ModelRegistry
from tailor.storage import keys
from tailor.storage.s3 import ObjectStore

PLOT_URL_SECONDS = 3600


def version_report(store: ObjectStore, registry: ModelRegistry, model: str, version: str) -> dict:
    if model not in MODELS:
        raise NotFound(f"unknown model {model!r}: models are {', '.join(MODELS)}")
    record = registry.version(model, version)
    if not record:
        raise NotFound(f"model {model} has no version {version!r}; GET /v1/models lists them")
    prefix = record.get("report_prefix") or keys.report_prefix(model, version)
    stored = sorted(store.keys(prefix))
    if not stored:
        raise NotFound(f"no report is stored for {model} version {version} (under {prefix})")
    out: dict = {"model": model, "version": version, "report_prefix": prefix, "report": None,
                 "markdown": None, "plots": [], "plot_url_expires_in": PLOT_URL_SECONDS}
    for key in stored:
        name = key[len(prefix):]
        if name == "report.json":
            out["report"] = store.get_json(key)
        elif name == "report.md":
            out["markdown"] = store.get(key).decode("utf-8", "replace")
        elif name.lower().endswith(".png"):
            out["plots"].append({"name": name, "url": store.presign_get(key, expires_in=PLOT_URL_SECONDS)})
    return out
