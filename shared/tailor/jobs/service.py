"""Training jobs: always asynchronous. The API records a QUEUED job and invokes the training
function with InvocationType=Event; the job moves QUEUED → RUNNING → SUCCEEDED/FAILED.

Scheduled retraining (the template's `RetrainSchedule`, an EventBridge schedule invoking
IngestFunction with `{"scheduled_training": true}`): `start_scheduled` starts the same job for the
models whose dataset stored rows after their last training job started; when none did, it records
a SKIPPED job with the reason, so `GET /v1/training-jobs` shows that the schedule ran.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tailor.core.clock import now_iso
from tailor.core.errors import Invalid, NotAvailableYet, NotFound, Unavailable
from tailor.models.registry import MODELS
from tailor.storage import keys
from tailor.storage.dynamo import StateTable

# The training function's Timeout (template.yaml) plus a margin: a run still RUNNING after this
# was killed (timeout, out of memory) before it could record its end.
RUNNING_LIMIT_SECONDS = 900 + 300
# Every job also has an entry in one partition sorted by creation time: `GET /v1/training-jobs`
# pages through it newest first (no table scan). Jobs started before this index existed are
# not listed (GET /v1/training-jobs/{job_id} still finds them).
JOB_INDEX = keys.JOB_INDEX_PK
MAX_LIST_LIMIT = 100
DEFAULT_LIST_LIMIT = 20


def _timed_out(job: dict) -> dict | None:
    if job.get("status") != "RUNNING" or not job.get("started_at"):
        return None
    try:
        started = datetime.fromisoformat(str(job["started_at"]).replace("Z", "+00:00"))
    except ValueError:
        return None
    if (datetime.now(UTC) - started).total_seconds() <= RUNNING_LIMIT_SECONDS:
        return None
    return {**job, "status": "FAILED", "error": "the training run timed out or was stopped before it "
            "finished (no result was recorded); the current models are unchanged"}


class TrainingJobs:
    def __init__(self, state: StateTable, invoke: Callable[[dict], None] | None,
                 has_data: Callable[[str], bool], stored_at: Callable[[str], str | None] = lambda dataset: None):
        self.state = state
        self.invoke = invoke
        self.has_data = has_data
        self.stored_at = stored_at  # when a dataset last stored rows (ISO time), None if unknown

    def start(self, models: list[str] | None, *, trigger: str = "api") -> dict:
        if models is not None:
            unknown = [m for m in models if m not in MODELS]
            if unknown or not models:
                raise Invalid(f"unknown model(s) {', '.join(unknown) or '(none given)'}: "
                              f"choose from {', '.join(MODELS)}, or omit `models` to train all")
            missing = [m for m in models if not MODELS[m]["available"]]
            if missing:
                raise NotAvailableYet("; ".join(f"{m}: {MODELS[m]['note']}" for m in missing))
            empty = [m for m in models if not self.has_data(MODELS[m]["dataset"])]
            if empty:
                raise Invalid("; ".join(f"{m} needs data in the {MODELS[m]['dataset']} dataset first"
                                        for m in empty))
        else:
            models = [m for m, info in MODELS.items() if info["available"] and self.has_data(info["dataset"])]
            if not models:
                raise Invalid("there is nothing to train yet: ingest interactions (recommender) or reviews (sentiment) first")
        if self.invoke is None:
            raise Unavailable("training is not configured (TRAIN_FUNCTION_NAME is not set)")
        job_id = self._new_id()
        job = {"pk": keys.job_pk(job_id), "sk": keys.JOB_SK, "job_id": job_id, "status": "QUEUED",
               "models": models, "trigger": trigger, "created_at": now_iso(), "progress": []}
        self._record(job)
        try:
            self.invoke({"job_id": job_id, "models": models})
        except Exception as exc:
            self.finish(job_id, "FAILED", error=f"could not start the training function: {exc}")
            raise Unavailable("the training function could not be started; try again later") from exc
        return self.public(job)

    def start_scheduled(self) -> dict:
        """The schedule's run: a job for the models with new data, or a SKIPPED job saying why not."""
        due, skipped = [], {}
        for model, info in MODELS.items():
            dataset = info["dataset"]
            if not info["available"]:
                continue
            if not self.has_data(dataset):
                skipped[model] = f"no {dataset} data yet"
                continue
            trained, stored = self._last_started(model), self.stored_at(dataset)
            if trained and stored and stored <= trained:
                skipped[model] = f"no {dataset} rows stored since the last training job ({trained})"
            else:
                due.append(model)
        if due:
            job = self.start(due, trigger="schedule")
            return {**job, "skipped": skipped} if skipped else job
        job_id = self._new_id()
        job = {"pk": keys.job_pk(job_id), "sk": keys.JOB_SK, "job_id": job_id, "status": "SKIPPED", "models": [],
               "trigger": "schedule", "created_at": now_iso(), "finished_at": now_iso(), "skipped": skipped,
               "reason": "nothing to retrain: " + "; ".join(f"{m}: {why}" for m, why in skipped.items())}
        self._record(job)
        return self.public(job)

    def _record(self, job: dict) -> None:
        """A new job and its entry in the newest-first index."""
        self.state.put(job, only_if_new=True)
        self.state.put({"pk": JOB_INDEX, "sk": f"{job['created_at']}#{job['job_id']}", "job_id": job["job_id"]})

    def _last_started(self, model: str, look_back: int = 50) -> str | None:
        """When the newest job that trained `model` was created, whatever its outcome (a run that failed
        the gate on this data would fail it again; a SKIPPED job lists no models)."""
        for entry in self.state.query(JOB_INDEX, newest_first=True, limit=look_back):
            job = self.state.get(keys.job_pk(entry["job_id"]), keys.JOB_SK) or {}
            if model in (job.get("models") or []):
                return str(job["created_at"])
        return None

    @staticmethod
    def _new_id() -> str:
        return "job-" + now_iso().replace(":", "").replace("-", "") + "-" + secrets.token_hex(3)

    def get(self, job_id: str) -> dict:
        job = self.state.get(keys.job_pk(job_id), keys.JOB_SK)
        if not job:
            raise NotFound(f"no training job {job_id!r}")
        return self.public(_timed_out(job) or job)

    def list(self, limit: int = DEFAULT_LIST_LIMIT, next_token: str | None = None) -> dict:
        """Jobs newest first, `limit` (1-100) per page; `next_token` continues a listing."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise Invalid(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        after = None
        if next_token:
            try:
                after = base64.urlsafe_b64decode(next_token.encode() + b"=" * (-len(next_token) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                after = None
            if not after or "#job-" not in after:
                raise Invalid("next_token is not one this API returned: start again without it")
        entries, last = self.state.query_page(JOB_INDEX, limit=limit, newest_first=True, after_sk=after)
        jobs = []
        for entry in entries:
            job = self.state.get(keys.job_pk(entry['job_id']), keys.JOB_SK)
            if job:
                job = self.public(_timed_out(job) or job)
                job.pop("progress", None)  # GET /v1/training-jobs/{job_id} has the progress lines
                jobs.append(job)
        out: dict[str, Any] = {"jobs": jobs}
        if last:
            out["next_token"] = base64.urlsafe_b64encode(last.encode()).decode().rstrip("=")
        return out

    def mark_running(self, job_id: str) -> None:
        self.state.update(keys.job_pk(job_id), keys.JOB_SK, set={"status": "RUNNING", "started_at": now_iso()})

    def progress(self, job_id: str, message: str) -> None:
        job = self.state.get(keys.job_pk(job_id), keys.JOB_SK) or {}
        lines = (job.get("progress") or [])[-49:] + [f"{now_iso()} {message}"]
        self.state.update(keys.job_pk(job_id), keys.JOB_SK, set={"progress": lines})

    def finish(self, job_id: str, status: str, *, results: dict | None = None, error: str | None = None) -> None:
        fields: dict[str, Any] = {"status": status, "finished_at": now_iso()}
        if results is not None:
            fields["results"] = results
        if error is not None:
            fields["error"] = error
        self.state.update(keys.job_pk(job_id), keys.JOB_SK, set=fields)

    @staticmethod
    def public(job: dict) -> dict:
        return {k: v for k, v in job.items() if k not in ("pk", "sk")}
