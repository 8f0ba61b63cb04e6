"""A small HTTP client for Tailor's API (stdlib + botocore for signing): what the demo, the
benchmarks and the end-to-end tests use, and an example of how a back-office script talks to Tailor.

A deployed API wants a SigV4 signature on the administrative routes and an API key on the
website routes (template.yaml, "Calling the API" in the README):

    TailorClient(api_url, sign=True)             # signs with your AWS credentials (boto3's chain)
    TailorClient(api_url, api_key="...")         # website routes: sends x-api-key

The local stack is open unless started with --auth; it then accepts the local credentials
(`testing`/`testing`, region us-east-1), which `sign=True` picks up from AWS_* variables.
"""

from __future__ import annotations

import json
import re
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


def _region_of(url: str) -> str | None:
    """The region of an execute-api URL (https://<id>.execute-api.<region>.amazonaws.com/...)."""
    match = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", url)
    return match.group(1) if match else None


class TailorClient:
    def __init__(self, base_url: str, timeout: float = 60, *, api_key: str | None = None, sign: bool = False,
                 credentials: Any = None, region: str | None = None):
        """`api_key` is sent as x-api-key; `sign=True` (or `credentials`, botocore Credentials)
        signs every request with SigV4 for execute-api in `region` (default: from the URL, else
        the AWS configuration, else us-east-1 as the local stack expects)."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.api_key = api_key
        self._signer = None
        if sign or credentials is not None:
            import botocore.session
            from botocore.auth import SigV4Auth

            session = botocore.session.get_session()
            credentials = credentials or session.get_credentials()
            if credentials is None:
                raise RuntimeError("sign=True needs AWS credentials (environment, ~/.aws, or an instance role)")
            region = region or _region_of(self.base_url) or session.get_config_variable("region") or "us-east-1"
            self._signer = SigV4Auth(credentials, "execute-api", region)

    def _headers(self, method: str, url: str, data: bytes | None, headers: dict) -> dict:
        """Every header to send: ours, the caller's, the API key, and the SigV4 signature over them."""
        out = {"Content-Type": "application/json", **headers}
        if self.api_key is not None:
            out["x-api-key"] = self.api_key
        if self._signer is not None:
            from botocore.awsrequest import AWSRequest

            signable = AWSRequest(method=method, url=url, data=data, headers=out)
            self._signer.add_auth(signable)  # adds X-Amz-Date, Authorization (and the session token)
            out = dict(signable.headers.items())
        return out

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                headers: dict | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        url = self.base_url + path
        request = urllib.request.Request(url, data=data, method=method)
        for key, value in self._headers(method, url, data, headers or {}).items():
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
