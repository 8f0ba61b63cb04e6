"""One training job: train each requested model, save the version, apply the promotion gate.

A trainer is `train(ctx: TrainingContext) -> Candidate` in `tailor.training.<model>_job`; it is
imported only when its model is trained, so the job runner itself stays TensorFlow-free.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tailor.core.clock import new_version
from tailor.core.logsafe import exception_summary
from tailor.core.observability import MetricUnit, metrics
from tailor.jobs.service import TrainingJobs
from tailor.models.promotion import promotion_decision
from tailor.models.registry import ModelRegistry
from tailor.storage import keys
from tailor.storage.dynamo import StateTable
from tailor.storage.s3 import ObjectStore

DEFAULT_MARGIN = 0.02


@dataclass
class TrainingContext:
    job_id: str
    model: str
    version: str
    store: ObjectStore
    state: StateTable
    progress: Callable[[str], None]
    options: dict = field(default_factory=dict)


@dataclass
class Candidate:
    artifacts: dict[str, bytes]  # file name → bytes, saved under models/<model>/<version>/
    metrics: dict  # everything the report shows; metrics["gate"] is filled in by the job
    report: dict[str, bytes]  # report.json, report.md, *.png
    gate_metric: str
    score: float
    baseline_name: str | None = None
    baseline: float | None = None
    on_promoted: Callable[[], None] | None = None  # e.g. re-score stored data with the new model
    on_decided: Callable[[bool], None] | None = None  # after the gate either way (argument: promoted?)
    selection: str | None = None  # which of the trainer's candidates this version serves, and why
    current_score: float | None = None  # the current model's gate metric on this candidate's validation data


def promotion_margin() -> float:
    return float(os.environ.get("PROMOTION_MARGIN", DEFAULT_MARGIN))


def run_job(event: dict, *, jobs: TrainingJobs, registry: ModelRegistry, store: ObjectStore,
            state: StateTable) -> dict:
    job_id, models = event["job_id"], event["models"]
    jobs.mark_running(job_id)
    results: dict[str, dict] = {}
    try:
        for model in models:
            started = time.monotonic()
            version = new_version()

            def progress(message: str, _model=model) -> None:
                print(f"[{job_id}] {_model}: {message}", flush=True)  # CloudWatch gets it too
                jobs.progress(job_id, f"{_model}: {message}")

            trainer = importlib.import_module(f"tailor.training.{model}.job").train
            ctx = TrainingContext(job_id, model, version, store, state, progress, event.get("options") or {})
            candidate: Candidate = trainer(ctx)
            candidate.metrics["gate"] = {"metric": candidate.gate_metric, "score": candidate.score,
                                         "baseline": candidate.baseline_name, "baseline_score": candidate.baseline}
            candidate.metrics["training_seconds"] = round(time.monotonic() - started, 1)
            metrics.add_metric("TrainingDuration", MetricUnit.Seconds, time.monotonic() - started)  # one value per model
            registry.save_version(model, version, candidate.artifacts, candidate.metrics, candidate.report, job_id)
            current = registry.current(model)
            current_item = registry.version(model, current["version"]) if current else None
            promote, reason = promotion_decision(candidate.gate_metric, candidate.score, candidate.baseline_name,
                                                 candidate.baseline, current_item, promotion_margin(),
                                                 current_score=candidate.current_score)
            if candidate.selection:
                reason = f"{candidate.selection}; {reason}"
            registry.record_decision(model, version, promote, reason)
            if promote:
                registry.promote(model, version, reason)  # the pointer is written last
                if candidate.on_promoted:
                    candidate.on_promoted()
            progress(reason)
            if candidate.on_decided:
                candidate.on_decided(promote)
            results[model] = {"version": version, "promoted": promote, "decision": reason,
                              "metrics": candidate.metrics, "report": keys.report_prefix(model, version)}
    except Exception as exc:
        # The current model and its pointer are untouched; the job says what went wrong.
        # Type and stack only: the message may quote stored rows (tailor.core.logsafe); the job record keeps it.
        print(json.dumps({"job_id": job_id, "message": "training job failed", **exception_summary(exc)}), flush=True)
        jobs.finish(job_id, "FAILED", results=results, error=f"{type(exc).__name__}: {exc}")
        metrics.add_metric("TrainingJobsFailed", MetricUnit.Count, 1)  # the template's alarm watches it
        return {"job_id": job_id, "status": "FAILED"}
    jobs.finish(job_id, "SUCCEEDED", results=results)
    metrics.add_metric("TrainingJobsFailed", MetricUnit.Count, 0)
    return {"job_id": job_id, "status": "SUCCEEDED"}
