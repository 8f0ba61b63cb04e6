"""A small HTTP client for Tailor's API (stdlib only): what the demo, the benchmarks and the
end-to-end tests use, and an example of how a back-office script talks to Tailor."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class ApiError(RuntimeError):
    def __init__(self, status: int, body: Any):
        message = body.get("error", {}).get("message") if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.body = status, body


class TailorClient:
    def __init__(self, base_url: str, timeout: float = 60):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                headers: dict | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        try:
            return status, json.loads(payload) if payload else None
        except json.JSONDecodeError:
            return status, payload.decode("utf-8", "replace")

    def call(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201, 202)) -> Any:
        """Like request, but raise ApiError unless the status is one of `expect`."""
        status, payload = self.request(method, path, body)
        if status not in expect:
            raise ApiError(status, payload)
        return payload

    def upload(self, dataset: str, path: str | Path) -> str:
        """Bulk upload: ask for a presigned URL, then PUT the file there. Returns the object key."""
        path = Path(path)
        grant = self.call("POST", "/v1/uploads", {"dataset": dataset, "filename": path.name,
                                                  "size_bytes": path.stat().st_size})
        request = urllib.request.Request(grant["upload_url"], data=path.read_bytes(), method="PUT")
        for key, value in grant.get("headers", {}).items():
            request.add_header(key, value)  # Content-Type is part of the signature
        with urllib.request.urlopen(request, timeout=max(self.timeout, 300)) as response:
            if response.status != 200:
                raise ApiError(response.status, response.read().decode())
        return grant["key"]

    def dataset(self, name: str) -> dict:
        return next(d for d in self.call("GET", "/v1/datasets")["datasets"] if d["name"] == name)

    def wait_for_ingest(self, key: str, dataset: str, timeout: float = 300) -> dict:
        """Wait until the upload `key` shows up in the dataset's recent ingests; return that entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.dataset(dataset)["recent_ingests"]:
                if entry.get("source") == key:
                    return entry
            time.sleep(0.2)
        raise TimeoutError(f"{key} was not ingested within {timeout:.0f} s")

    def wait_for_job(self, job_id: str, timeout: float = 900, on_progress=None) -> dict:
        deadline, seen = time.monotonic() + timeout, set()
        while time.monotonic() < deadline:
            job = self.call("GET", f"/v1/training-jobs/{job_id}")
            for line in job.get("progress") or []:  # the job keeps its last 50 lines
                if line not in seen and on_progress:
                    on_progress(line)
                seen.add(line)
            if job["status"] in ("SUCCEEDED", "FAILED"):
                return job
            time.sleep(0.5)
        raise TimeoutError(f"training job {job_id} did not finish within {timeout:.0f} s")
