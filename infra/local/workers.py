"""Run each function in its own processes, the way Lambda runs it in its own containers.

A FunctionPool owns up to N worker processes of one function (N = the function's
ReservedConcurrentExecutions if set, else the stack's --max-workers). Each worker handles one
invocation at a time, keeps its imported modules between invocations (a warm container), and is
replaced when it dies or times out. Workers start lazily: the first invocation pays the import,
like a cold start.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .model import FunctionSpec

WORKER_MAIN = Path(__file__).with_name("worker_main.py")
# Lambda refuses a synchronous response larger than 6 MB.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
# Variables of the developer's shell that a worker still needs to run at all; everything else
# (AWS_PROFILE, PYTHONPATH, credentials, ...) stays out, as it would on Lambda.
_INHERITED_VARIABLES = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "SYSTEMROOT")

log = logging.getLogger("infra.local")

# Called with (worker pid, line) for every line a worker writes to its log, newline included.
LogListener = Callable[[int, str], None]
# How long an invocation waits for its own log lines to reach the listener (normally microseconds).
LOG_SYNC_SECONDS = 5.0


@dataclass
class Invocation:
    request_id: str
    payload: str | None  # the handler's return value as JSON text
    error: dict | None  # Lambda's error document: errorMessage, errorType, stackTrace
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.error is None


class PoolClosed(RuntimeError):
    """The stack is shutting down; no more invocations."""


def function_environment(spec: FunctionSpec, moto_url: str, lambda_url: str) -> dict[str, str]:
    """The environment a worker sees: the template's variables plus what Lambda and the local stack add."""
    env = {name: os.environ[name] for name in _INHERITED_VARIABLES if name in os.environ}
    env.update(spec.environment)
    env.update({
        # What the Lambda service itself sets.
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "TZ": "UTC",
        # Local only: fake credentials, and every AWS call goes to moto - or, for Lambda's Invoke,
        # back to this stack. boto3 reads AWS_ENDPOINT_URL_<SERVICE> by itself.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_S3": moto_url,
        "AWS_ENDPOINT_URL_DYNAMODB": moto_url,
        "AWS_ENDPOINT_URL_SQS": moto_url,
        "AWS_ENDPOINT_URL_FIREHOSE": moto_url,
        "AWS_ENDPOINT_URL_LAMBDA": lambda_url,
        # No ~/.aws files: a developer's profile must not redirect or re-credential the handler.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "TAILOR_LOCAL": "1",
    })
    return env


class WorkerProcess:
    """One child process running one function (see worker_main.py for the other end)."""

    def __init__(self, spec: FunctionSpec, env: dict[str, str], log_listener: LogListener | None = None) -> None:
        self.spec = spec
        config = {
            "handler": spec.handler,
            "code_dir": str(spec.code_dir),
            "layer_dirs": [str(path) for path in spec.layer_dirs],
        }
        # With a listener (a log subscription reads this function's log), this process keeps the
        # write end of the worker's log pipe too, to put a mark after an invocation's output:
        # when the forwarding thread reaches the mark, every line before it has been handed to the
        # listener (see sync_log). Without one, the pipe is Popen's own.
        self._log_listener = log_listener
        self._mark = b"\0infra.local log mark " + uuid.uuid4().hex.encode() + b"\n"
        self._mark_writer: int | None = None
        self._mark_lock = threading.Lock()  # guards writes to, and closing of, _mark_writer
        self._marks_sent = self._marks_seen = 0
        self._log_ended = False
        self._log_condition = threading.Condition()
        log_read_end, stderr = None, subprocess.PIPE
        if log_listener is not None:
            log_read_end, self._mark_writer = os.pipe()
            stderr = self._mark_writer
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-u", str(WORKER_MAIN), json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env,
            )
        except BaseException:
            if log_read_end is not None:
                os.close(log_read_end)
            self._close_mark_writer()
            raise
        self._log_stream = self.process.stderr if log_read_end is None else os.fdopen(log_read_end, "rb")
        self._replies: queue.SimpleQueue = queue.SimpleQueue()
        self._function_log = logging.getLogger(f"infra.local.{spec.logical_id}")
        threading.Thread(target=self._read_replies, daemon=True, name=f"{spec.logical_id}-replies").start()
        threading.Thread(target=self._forward_log, daemon=True, name=f"{spec.logical_id}-log").start()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, message: dict, timeout: float) -> dict:
        """Send one invocation; return the worker's reply, or an error document if it died or timed out."""
        try:
            self.process.stdin.write(json.dumps(message).encode("utf-8") + b"\n")
            self.process.stdin.flush()
            reply = self._replies.get(timeout=timeout)
        except (BrokenPipeError, OSError):
            reply = None
        except queue.Empty:
            self.kill()  # Lambda stops a timed-out environment; the next call gets a fresh one
            return {"error": {"errorMessage": f"Task timed out after {timeout:.2f} seconds",
                              "errorType": "Sandbox.Timedout", "stackTrace": []}}
        if reply is None:  # the process ended (sys.exit in the handler, a crash, or a kill)
            code = self.process.wait()
            return {"error": {"errorMessage": f"Runtime exited with error: exit status {code}",
                              "errorType": "Runtime.ExitError", "stackTrace": []}}
        return reply

    def _read_replies(self) -> None:
        for line in self.process.stdout:
            self._replies.put(json.loads(line))
        self._close_mark_writer()  # the worker is gone: let the log forwarder reach the end
        self._replies.put(None)

    def _forward_log(self) -> None:
        for raw in self._log_stream:
            marked = raw.endswith(self._mark)
            if marked:
                raw = raw[:-len(self._mark)]  # a mark after a last line without its newline
            if raw:
                line = raw.decode("utf-8", "replace")
                self._function_log.info("[%s] %s", self.spec.logical_id, line.rstrip())
                if self._log_listener is not None:
                    try:
                        self._log_listener(self.process.pid, line)
                    except Exception:  # a listener bug must not stop the log
                        log.exception("%s: log listener failed", self.spec.logical_id)
            if marked:
                with self._log_condition:
                    self._marks_seen += 1
                    self._log_condition.notify_all()
        with self._log_condition:
            self._log_ended = True
            self._log_condition.notify_all()

    def sync_log(self, timeout: float = LOG_SYNC_SECONDS) -> bool:
        """Wait until every line the worker has written so far has reached the log listener.

        The worker writes its output before its reply, so after an invocation returns this covers
        everything the invocation printed. A dead worker's remaining lines are read to the end.
        False if that took longer than `timeout` (or the worker has no listener).
        """
        if self._log_listener is None:
            return False
        with self._mark_lock:
            target = None
            if self._mark_writer is not None:
                try:
                    os.write(self._mark_writer, self._mark)
                    self._marks_sent += 1
                    target = self._marks_sent
                except OSError:
                    target = None
        with self._log_condition:
            synced = self._log_condition.wait_for(
                lambda: self._log_ended or (target is not None and self._marks_seen >= target), timeout)
        if not synced:
            log.warning("%s: log lines not forwarded within %.1f s", self.spec.logical_id, timeout)
        return synced

    def _close_mark_writer(self) -> None:
        with self._mark_lock:
            if self._mark_writer is not None:
                os.close(self._mark_writer)
                self._mark_writer = None

    def stop(self, grace_seconds: float = 2.0) -> None:
        """Close stdin (the worker's loop ends), then terminate, then kill."""
        if not self.alive:
            self._close_mark_writer()
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=grace_seconds)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        self._close_mark_writer()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._close_mark_writer()


class FunctionPool:
    """The worker processes of one function, used one invocation at a time each."""

    def __init__(self, spec: FunctionSpec, env: dict[str, str], max_workers: int,
                 log_listener: LogListener | None = None) -> None:
        self.spec = spec
        self._env = env
        self._log_listener = log_listener  # sees every log line of every worker (log subscriptions)
        self.limit = spec.reserved_concurrency if spec.reserved_concurrency is not None else max_workers
        self._idle: list[WorkerProcess] = []
        self._busy: set[WorkerProcess] = set()
        self._starting = 0
        self._condition = threading.Condition()
        self._closed = False

    def invoke(self, event: object, request_id: str | None = None) -> Invocation:
        """Run the handler on `event` in a free worker (waiting for one if all are busy)."""
        request_id = request_id or str(uuid.uuid4())
        if self.limit == 0:
            return Invocation(request_id, None, {"errorMessage": "Rate Exceeded: reserved concurrency is 0",
                                                 "errorType": "TooManyRequestsException", "stackTrace": []}, 0.0)
        worker = self._acquire()
        started = time.time()
        try:
            reply = worker.invoke(self._message(event, request_id, started), timeout=self.spec.timeout_seconds)
            if self._log_listener is not None:
                worker.sync_log()  # the invocation's log lines reach the subscriptions before it returns
        finally:
            self._release(worker)
        duration_ms = (time.time() - started) * 1000
        payload, error = reply.get("payload"), reply.get("error")
        if payload is not None and len(payload.encode("utf-8")) > MAX_RESPONSE_BYTES:
            payload, error = None, {"errorMessage": f"Response payload size exceeded maximum allowed payload size "
                                                    f"({MAX_RESPONSE_BYTES} bytes).",
                                    "errorType": "Function.ResponseSizeTooLarge", "stackTrace": []}
        return Invocation(request_id, payload, error, duration_ms)

    def _message(self, event: object, request_id: str, started: float) -> dict:
        spec = self.spec
        day = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d")
        return {
            "event": event,
            "deadline_ms": (started + spec.timeout_seconds) * 1000,
            "trace_id": f"Root=1-{int(started):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0",
            "context": {
                "function_name": spec.name,
                "function_version": "$LATEST",
                "invoked_function_arn": spec.arn,
                "memory_limit_in_mb": spec.memory_mb,
                "aws_request_id": request_id,
                "log_group_name": f"/aws/lambda/{spec.name}",
                "log_stream_name": f"{day}/[$LATEST]{uuid.uuid4().hex}",
            },
        }

    def _acquire(self) -> WorkerProcess:
        with self._condition:
            while True:
                if self._closed:
                    raise PoolClosed(self.spec.logical_id)
                if self._idle:
                    worker = self._idle.pop()
                    self._busy.add(worker)
                    return worker
                if len(self._busy) + self._starting < self.limit:
                    self._starting += 1
                    break
                self._condition.wait()
        try:  # start the process outside the lock: it takes a moment
            worker = WorkerProcess(self.spec, self._env, self._log_listener)
        finally:
            with self._condition:
                self._starting -= 1
                self._condition.notify()  # if the start failed, a waiter may try again
        with self._condition:
            if self._closed:
                worker.kill()
                raise PoolClosed(self.spec.logical_id)
            self._busy.add(worker)
            return worker

    def _release(self, worker: WorkerProcess) -> None:
        with self._condition:
            self._busy.discard(worker)
            if worker.alive and not self._closed:
                self._idle.append(worker)
            self._condition.notify()

    def close(self) -> None:
        """Stop every worker, idle or busy; invocations still waiting get PoolClosed."""
        with self._condition:
            self._closed = True
            workers = self._idle + list(self._busy)
            self._idle.clear()
            self._condition.notify_all()
        for worker in workers:
            worker.stop()

    @property
    def closed(self) -> bool:
        return self._closed

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (e.g. to read their peak memory from /proc)."""
        with self._condition:
            return [worker.process.pid for worker in self._idle + list(self._busy) if worker.alive]
