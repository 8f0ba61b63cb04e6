"""End-to-end fixtures: the real local stack (template.yaml), started once per test session.

The stack runs as `python -m infra.local_stack --port 0 --moto-port 0` in its own process, the
way a developer runs it; its output goes to a log file (printed when it fails to start or to
stop). Set TAILOR_LOCAL_URL=http://127.0.0.1:3000 to run the tests against a stack you
started yourself instead (it is then left running).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from infra.client import TailorClient

ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "Tailor local stack ready on "
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30


class RunningStack:
    """Where the local stack listens, and its log."""

    def __init__(self, url: str, log_path: Path | None = None, process: subprocess.Popen | None = None) -> None:
        self.url = url.rstrip("/")
        self.log_path = log_path
        self.process = process
        self.client = TailorClient(self.url)
        status, health = self.client.request("GET", "/__local/health")
        assert status == 200, f"{self.url}/__local/health answered {status}"
        self.moto_url = health["moto_url"]
        self.health = health  # bucket, table and function names

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.client.request(method, path, body)

    def log_tail(self, lines: int = 60) -> str:
        if self.log_path is None:
            return "(stack started outside the tests: see its own console)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _wait_until_ready(process: subprocess.Popen, log_path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith(READY_PREFIX):
                return line[len(READY_PREFIX):].strip()
        if process.poll() is not None:
            pytest.fail(f"the local stack exited with {process.returncode} before it was ready:\n"
                        f"{log_path.read_text(errors='replace')[-4000:]}")
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"the local stack was not ready after {START_TIMEOUT_SECONDS} s:\n"
                f"{log_path.read_text(errors='replace')[-4000:]}")


@contextlib.contextmanager
def started_stack(log_path: Path):
    """A local stack of its own, as `python -m infra.local_stack` runs it; stopped with SIGINT."""
    with open(log_path, "wb") as log:
        # A file, not a pipe: nobody would drain a pipe while the tests run, and a full pipe blocks the stack.
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local_stack", "--port", "0", "--moto-port", "0"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        stack = RunningStack(_wait_until_ready(process, log_path), log_path, process)
        yield stack
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the local stack did not stop within {STOP_TIMEOUT_SECONDS} s of SIGINT:\n{stack.log_tail()}")
        assert code == 0, f"the local stack exited with {code} after SIGINT:\n{stack.log_tail()}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    external_url = os.environ.get("TAILOR_LOCAL_URL")
    if external_url:
        yield RunningStack(external_url)
        return
    with started_stack(tmp_path_factory.mktemp("local-stack") / "stack.log") as stack:
        yield stack


@pytest.fixture(scope="session")
def api(local_stack):
    """`api(method, path, body=None) -> (status, json)` against the local stack."""
    return local_stack.api


@pytest.fixture(scope="session")
def trained_shop(local_stack, tmp_path_factory):
    """A demo shop uploaded as files (items, users, interactions) and one recommender training;
    shared by the recommendation and customer tests (training is the slow part)."""
    import csv

    from infra.datagen import PRESETS, generate

    client = TailorClient(local_stack.url)
    files = generate(tmp_path_factory.mktemp("shop"), seed=0, **PRESETS["demo"])
    for dataset in ("items", "users", "interactions"):
        client.wait_for_ingest(client.upload(dataset, files[dataset]), dataset)
    job = client.call("POST", "/v1/training-jobs", {"models": ["recommender"]})
    job = client.wait_for_job(job["job_id"], timeout=600)
    assert job["status"] == "SUCCEEDED", job.get("error")
    assert job["results"]["recommender"]["promoted"], job["results"]["recommender"]["decision"]
    with open(files["interactions"], encoding="utf-8") as handle:
        user = next(csv.DictReader(handle))["user_id"]
    return client, user, files
