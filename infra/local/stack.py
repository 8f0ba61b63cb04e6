"""The local stack: moto for S3/DynamoDB/SQS, worker processes for the functions, one HTTP server.

    with LocalStack("template.yaml", port=0, moto_port=0) as stack:
        urllib.request.urlopen(stack.url + "/v1/segments")

The HTTP server on `stack.url` answers three kinds of requests:
- the API routes declared by the template's `Type: Api` events (API Gateway REST, proxy integration);
- Lambda's Invoke API, `POST /2015-03-31/functions/{name}/invocations`, so a handler's
  `boto3.client("lambda").invoke(...)` reaches the local function (workers get
  AWS_ENDPOINT_URL_LAMBDA pointing here);
- `GET /__local/health`, local only: the moto URL and the physical names of everything.

The template's `AWS::Logs::SubscriptionFilter`s are emulated too (infra/local/logs.py): lines a
source function prints that match the filter pattern reach the destination function in batches,
as asynchronous invocations, within ~0.2 s. A test that needs them delivered calls
`stack.drain_logs()`, which returns once every line matched so far has been delivered and the
destination's invocations have finished (retries included), or raises TimeoutError.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from .apigateway import HttpRequest, MalformedProxyResponse, NoRoute, RouteTable, build_proxy_event, error_body, proxy_response
from .auth import Caller, Denied, Gatekeeper, new_api_key
from .intrinsics import ACCOUNT_ID
from .logs import LogSubscriptionDelivery
from .model import StackModel, load_stack_model
from .moto_atomic import make_queries_partition_local, make_requests_atomic
from .provision import S3_EVENTS_QUEUE, moto_client, provision
from .s3events import S3EventPump
from .workers import FunctionPool, Invocation, PoolClosed, function_environment

log = logging.getLogger("infra.local")

# API Gateway's limits: a 10 MB request payload, a 29 s integration timeout.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
API_TIMEOUT_SECONDS = 29.0
# Lambda retries a failed asynchronous invocation after about 1 and 2 minutes; locally the same
# number of retries happens after 1 and 2 seconds, so a demo does not stall.
ASYNC_RETRY_DELAYS = (1.0, 2.0)
HEALTH_PATH = "/__local/health"
INVOKE_PREFIX, INVOKE_SUFFIX = "/2015-03-31/functions/", "/invocations"


class LocalStack:
    """template.yaml running locally; `start()`/`stop()` or a `with` block.

    One per process: moto keeps its state in module globals, so two stacks in one process
    would share (and collide on) buckets and tables. Run a second one as a subprocess.
    """

    def __init__(
        self,
        template: str | Path = "template.yaml",
        port: int = 3000,
        moto_port: int = 4566,
        stage: str = "local",
        host: str = "127.0.0.1",
        max_workers: int = 2,
        api_timeout: float = API_TIMEOUT_SECONDS,
        async_retry_delays: tuple[float, ...] = ASYNC_RETRY_DELAYS,
        auth: bool = False,
        api_key: str | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.template = Path(template)
        self.host = host
        self.stage = stage
        self.max_workers = max_workers
        self.api_timeout = api_timeout
        self.async_retry_delays = async_retry_delays
        # Open by default. With auth, routes are checked as API Gateway would (infra/local/auth.py):
        # SigV4 where the template says AWS_IAM, x-api-key where it says ApiKeyRequired.
        self.gatekeeper = Gatekeeper(api_key or new_api_key(), credentials) if auth else None
        self._requested_port = port
        self._requested_moto_port = moto_port
        self.model: StackModel | None = None
        self.url = self.moto_url = ""
        self.pools: dict[str, FunctionPool] = {}
        self._routes: RouteTable | None = None
        self._moto = None
        self._http: ThreadingHTTPServer | None = None
        self._serving = False
        self._pump: S3EventPump | None = None
        self._log_delivery: LogSubscriptionDelivery | None = None
        self._queue_urls: dict[str, str] = {}
        self._sqs = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> LocalStack:
        self.model = load_stack_model(self.template, self.stage)
        for warning in self.model.warnings:
            log.warning("template: %s", warning)
        try:
            self._start_moto()
            # Bind the HTTP port first: the workers' environment needs this stack's URL.
            handler = type("LocalStackRequestHandler", (_RequestHandler,), {"stack": self})
            self._http = _HttpServer((self.host, self._requested_port), handler)
            self.url = f"http://{_client_host(self.host)}:{self._http.server_address[1]}"
            self._queue_urls = provision(self.model, self.moto_url)
            self._sqs = moto_client("sqs", self.moto_url)
            self._routes = RouteTable(self.model.routes)
            delivery = None
            if self.model.log_subscriptions:
                delivery = self._log_delivery = LogSubscriptionDelivery(
                    self.model.log_subscriptions, self._deliver_logs, owner=self.model.resolver.account_id)
            self.pools = {
                logical_id: FunctionPool(spec, function_environment(spec, self.moto_url, self.url), self.max_workers,
                                         log_listener=delivery.listener_for(logical_id) if delivery else None)
                for logical_id, spec in self.model.functions.items()
            }
            if delivery is not None:
                delivery.start()
            if self.model.s3_subscriptions:
                self._pump = S3EventPump(self._sqs, self._queue_urls[S3_EVENTS_QUEUE],
                                         self.model.s3_subscriptions, self.invoke_async)
                self._pump.start()
            threading.Thread(target=self._http.serve_forever, daemon=True, name="local-stack-http").start()
            self._serving = True
        except BaseException:
            self.stop()
            raise
        return self

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer  # heavy import, only when a stack starts

        # ThreadedMotoServer.start() waits forever if its port is taken: fail first, clearly.
        if self._requested_moto_port:
            _ensure_port_free(self.host, self._requested_moto_port, "--moto-port")
        # moto's werkzeug server logs every request; keep the console for the stack's own lines.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        make_requests_atomic()  # moto answers on threads: see infra.local.moto_atomic
        make_queries_partition_local()  # a Query reads its partition, not the whole table
        self._moto = ThreadedMotoServer(ip_address=self.host, port=self._requested_moto_port, verbose=False)
        self._moto.start()
        self.moto_url = f"http://{_client_host(self.host)}:{self._moto.get_host_and_port()[1]}"

    def stop(self) -> None:
        """Stop accepting requests, stop the S3 event thread, the workers, then moto. Idempotent."""
        if self._http is not None:
            if self._serving:  # shutdown() would wait forever for a loop that never started
                self._http.shutdown()
                self._serving = False
            self._http.server_close()
            self._http = None
        if self._pump is not None:
            self._pump.stop()
            self._pump = None
        if self._log_delivery is not None:
            self._log_delivery.stop()
            self._log_delivery = None
        for pool in self.pools.values():
            pool.close()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- invocations -------------------------------------------------------------------

    def invoke(self, function: str, event: object, request_id: str | None = None) -> Invocation:
        """Synchronous invocation (RequestResponse) of a function by logical id."""
        return self.pools[function].invoke(event, request_id)

    def fire_schedule(self, event_id: str = "RetrainSchedule") -> Invocation:
        """Deliver a schedule's input to its function now (schedules do not run on a clock locally)."""
        assert self.model is not None, "start the stack first"
        schedule = next((s for s in self.model.schedules if s.event_id == event_id), None)
        if schedule is None:
            raise KeyError(f"no ScheduleV2 event {event_id!r} in the template")
        return self.invoke(schedule.function, schedule.input)

    def invoke_async(self, function: str, event: object, on_done: Callable[[], None] | None = None) -> str:
        """Asynchronous invocation (Event): returns the request id at once, runs in the background.

        A failure is retried as many times as the function's EventInvokeConfig allows
        (MaximumRetryAttempts, default 2), then sent to its DeadLetterQueue if it has one.
        `on_done` (local only) is called when that is over: success, last failure, or shutdown.
        """
        request_id = str(uuid.uuid4())
        threading.Thread(target=self._run_async, args=(function, event, request_id, on_done),
                         daemon=True, name=f"async-{function}").start()
        return request_id

    def _run_async(self, function: str, event: object, request_id: str,
                   on_done: Callable[[], None] | None = None) -> None:
        try:
            self._run_async_attempts(function, event, request_id)
        finally:
            if on_done is not None:
                on_done()

    def _run_async_attempts(self, function: str, event: object, request_id: str) -> None:
        pool = self.pools[function]
        attempts = 1 + pool.spec.async_retries
        for attempt in range(attempts):
            try:
                invocation = pool.invoke(event, request_id)
            except PoolClosed:
                return  # shutting down
            outcome = "ok" if invocation.ok else f"{invocation.error['errorType']}: {invocation.error['errorMessage']}"
            log.info("async %s %.0f ms %s (attempt %d/%d)", function, invocation.duration_ms, outcome,
                     attempt + 1, attempts)
            if invocation.ok:
                return
            if attempt + 1 < attempts:
                time.sleep(self.async_retry_delays[min(attempt, len(self.async_retry_delays) - 1)])
        self._dead_letter(pool, event, invocation)

    def _dead_letter(self, pool: FunctionPool, event: object, invocation: Invocation) -> None:
        queue_url = self._queue_urls.get(pool.spec.dead_letter_queue or "")
        if queue_url is None or pool.closed:
            return
        # The message Lambda itself sends: the event as body, the error in message attributes.
        self._sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event), MessageAttributes={
            "RequestID": {"DataType": "String", "StringValue": invocation.request_id},
            "ErrorCode": {"DataType": "Number", "StringValue": "200"},
            "ErrorMessage": {"DataType": "String", "StringValue": invocation.error["errorMessage"][:1000]},
        })
        log.info("async %s: event sent to dead-letter queue %s", pool.spec.logical_id, pool.spec.dead_letter_queue)

    def _deliver_logs(self, function: str, event: dict, on_done: Callable[[], None]) -> None:
        # CloudWatch Logs invokes a subscribed function asynchronously, like S3 does.
        self.invoke_async(function, event, on_done=on_done)

    def flush_logs(self) -> None:
        """Hand every batch of matched log lines to its destination now, without waiting for it."""
        if self._log_delivery is not None:
            self._log_delivery.flush()

    def drain_logs(self, timeout: float = 30.0) -> None:
        """Wait until every log line matched by a subscription filter so far has been delivered.

        "Delivered": the destination function's asynchronous invocation has finished - it
        succeeded, or failed its last retry (and went to the dead-letter queue). Lines of an
        invocation are matched before that invocation returns, so after `stack.invoke(...)` or an
        HTTP response, `drain_logs()` covers what it printed. Raises TimeoutError after `timeout` s.
        """
        if self._log_delivery is not None:
            self._log_delivery.drain(timeout)

    # -- descriptions ------------------------------------------------------------------

    def health(self) -> dict:
        model = self.model
        return {
            "status": "ok",
            "url": self.url,
            "moto_url": self.moto_url,
            "stage": self.stage,
            "template": str(model.template_path),
            "buckets": {bucket.logical_id: bucket.name for bucket in model.buckets},
            "tables": {table.logical_id: table.name for table in model.tables},
            "queues": {queue.logical_id: queue.name for queue in model.queues},
            "functions": {logical_id: spec.name for logical_id, spec in model.functions.items()},
            "routes": [f"{route.method} {route.path} {route.function}" for route in model.routes],
            "log_subscriptions": [f"{s.source_function} {s.pattern.text} {s.destination_function}"
                                  for s in model.log_subscriptions],
            "auth": self.gatekeeper is not None,
        }

    def describe(self) -> str:
        """A compact startup summary: storage, then each function's routes and triggers."""
        model = self.model
        lines = [f"Template {model.template_path} (stage {self.stage}); moto on {self.moto_url}"]
        storage = [f"bucket {b.name}" for b in model.buckets] + [f"table {t.name}" for t in model.tables] \
            + [f"queue {q.name}" for q in model.queues]
        lines.append("  storage: " + ", ".join(storage))
        for logical_id, spec in model.functions.items():
            triggers = [f"{r.method} {r.path}" for r in model.routes if r.function == logical_id]
            triggers += [f"S3 {s.bucket}/{s.prefix}*{s.suffix}"
                         for s in model.s3_subscriptions if s.function == logical_id]
            triggers += [f"logs of {s.source_function} matching {s.pattern.text}"
                         for s in model.log_subscriptions if s.destination_function == logical_id]
            limit = self.pools[logical_id].limit
            lines.append(f"  {logical_id} ({spec.package_type}, {limit} worker{'s' if limit != 1 else ''}): "
                         + (", ".join(triggers) or "invoked by other functions"))
        if self.gatekeeper is None:
            lines.append("  auth: off (every route is open; start with --auth to require SigV4 and the API key)")
        else:
            keys = ", ".join(f"{key}/{secret}" for key, secret in self.gatekeeper.credentials.items())
            signed = sum(r.authorizer == "AWS_IAM" for r in model.routes)
            keyed = sum(r.api_key_required for r in model.routes)
            lines.append(f"  auth: on - {signed} admin routes need SigV4 (service execute-api, region "
                         f"{self.gatekeeper.region}, access key/secret {keys}); {keyed} website routes need "
                         f"x-api-key: {self.gatekeeper.api_key}")
        if model.not_emulated:
            counts = sorted(model.not_emulated.items())
            lines.append("  not emulated: " + ", ".join(f"{kind} x{count}" for kind, count in counts))
        return "\n".join(lines)


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def _ensure_port_free(host: str, port: int, option: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            make = {"--moto-port": "MOTO_PORT", "--port": "PORT"}.get(option)
            hint = f" (make local {make}=...; 0 picks a free port)" if make else ""
            raise OSError(f"port {port} on {host} is in use ({exc.strerror}); choose another with {option}{hint}") from None


def _run_in_thread(function: Callable, *args) -> Future:
    """Start `function` in a daemon thread; the caller may stop waiting for it (API Gateway's 29 s)."""
    future: Future = Future()

    def target() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(exc)

    threading.Thread(target=target, daemon=True).start()
    return future


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow handler must not hold up shutdown
    # The listen() backlog. socketserver's default of 5 overflowed when 200 clients connected at
    # once (bench/load.py): 122 connection resets and SYN retries of up to 9 s. API Gateway has no such limit.
    request_queue_size = 1024

    def server_bind(self) -> None:
        try:
            super().server_bind()
        except OSError as exc:
            port = self.server_address[1]
            raise OSError(f"port {port} on {self.server_address[0]} is in use ({exc.strerror}); "
                          "choose another with --port (make local PORT=...; 0 picks a free port)") from None


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3 and API Gateway clients expect
    server_version = "TailorLocalStack"
    stack: LocalStack  # set on the per-stack subclass

    def do_GET(self) -> None: self._handle()  # noqa: E704
    def do_POST(self) -> None: self._handle()  # noqa: E704
    def do_PUT(self) -> None: self._handle()  # noqa: E704
    def do_PATCH(self) -> None: self._handle()  # noqa: E704
    def do_DELETE(self) -> None: self._handle()  # noqa: E704
    def do_HEAD(self) -> None: self._handle()  # noqa: E704
    def do_OPTIONS(self) -> None: self._handle()  # noqa: E704

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass  # one line per request is written by _handle instead

    def _handle(self) -> None:
        started = time.monotonic()
        raw_path, _, query = self.path.partition("?")
        note = ""
        try:
            body = self._read_body()
            if body is None:
                status, note = self._send_json(413, error_body("payload_too_large", "request body over 10 MB")), ""
                self.close_connection = True
            elif raw_path == HEALTH_PATH and self.command == "GET":
                status = self._send_json(200, json.dumps(self.stack.health()).encode())
            elif raw_path.startswith(INVOKE_PREFIX) and raw_path.endswith(INVOKE_SUFFIX) and self.command == "POST":
                name = unquote(raw_path[len(INVOKE_PREFIX):-len(INVOKE_SUFFIX)])
                status, note = self._lambda_invoke(name, body)
            else:
                request = HttpRequest(self.command, raw_path, query, list(self.headers.items()), body,
                                      self.client_address[0])
                status, note = self._api_request(request)
        except (BrokenPipeError, ConnectionResetError):
            status, note = 499, "client went away"
        except Exception:  # a bug in the local stack itself: answer, log, keep serving
            log.exception("local stack error on %s %s", self.command, self.path)
            status = self._send_json(500, error_body("local_stack_error", "the local stack failed; see its log"))
            self.close_connection = True
        log.info("%s %s %d %.0f ms%s", self.command, self.path, status, (time.monotonic() - started) * 1000,
                 f" {note}" if note else "")

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None if it is over API Gateway's limit."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                total += size
                if total > MAX_REQUEST_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> int:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return status

    def _send_json(self, status: int, body: bytes, headers: list[tuple[str, str]] = ()) -> int:
        return self._send(status, [("Content-Type", "application/json"), *headers], body)

    # -- API Gateway -------------------------------------------------------------------

    def _api_request(self, request: HttpRequest) -> tuple[int, str]:
        stack = self.stack
        match = stack._routes.match(request.method, request.raw_path)
        if isinstance(match, NoRoute):
            if match.status == 405:
                allowed = ", ".join(match.allowed_methods)
                return self._send_json(405, error_body("method_not_allowed", f"{request.method} is not allowed on "
                                                       f"{request.raw_path}; allowed: {allowed}"),
                                       [("Allow", allowed)]), ""
            message = f"no route for {request.method} {request.raw_path}"
            return self._send_json(404, error_body("not_found", message)), ""

        request_id = str(uuid.uuid4())
        function = match.route.function
        caller = Caller()
        if stack.gatekeeper is not None:
            outcome = stack.gatekeeper.check(match.route, request)
            if isinstance(outcome, Denied):  # API Gateway's own answer: the function never runs
                return self._send_json(outcome.status, json.dumps({"message": outcome.message}).encode(),
                                       [("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", outcome.error_type)]
                                       ), f"denied: {outcome.reason}"
            caller = outcome
        event = build_proxy_event(match, request, request_id, self.server.server_address[1])
        identity = event["requestContext"]["identity"]
        if caller.access_key:  # what API Gateway passes on for an IAM-authorised request
            identity.update(accessKey=caller.access_key, caller=caller.access_key, user=caller.access_key,
                            accountId=ACCOUNT_ID, userArn=f"arn:aws:iam::{ACCOUNT_ID}:user/local")
        if caller.api_key:
            identity.update(apiKey=caller.api_key, apiKeyId="local")
        future = _run_in_thread(stack.invoke, function, event, request_id)
        try:
            invocation = future.result(timeout=stack.api_timeout)
        except FutureTimeout:
            return self._send_json(504, error_body(
                "gateway_timeout", f"{function} did not answer within API Gateway's {stack.api_timeout:g} s limit"),
                [("x-amzn-RequestId", request_id)]), f"-> {function} (timed out)"
        except PoolClosed:
            return self._send_json(503, error_body("unavailable", "the local stack is shutting down")), ""
        headers = [("x-amzn-RequestId", request_id)]
        if not invocation.ok:
            error = invocation.error
            return self._send_json(502, error_body("internal_error", f"{function} failed: {error['errorType']}: "
                                                   f"{error['errorMessage']}"), headers), f"-> {function} (error)"
        try:
            status, response_headers, body = proxy_response(invocation.payload)
        except MalformedProxyResponse as exc:
            log.error("%s returned a malformed proxy response: %s", function, exc)
            return self._send_json(502, error_body("internal_error", f"malformed Lambda proxy response from "
                                                   f"{function}: {exc}"), headers), f"-> {function} (malformed)"
        return self._send(status, response_headers + headers, body), f"-> {function}"

    # -- Lambda Invoke API -------------------------------------------------------------

    def _lambda_invoke(self, name: str, body: bytes) -> tuple[int, str]:
        stack = self.stack
        spec = stack.model.function_by_name(name)
        if spec is None:
            return self._lambda_error(404, "ResourceNotFoundException", f"Function not found: {name}"), ""
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError:
            return self._lambda_error(400, "InvalidRequestContentException",
                                      "Could not parse request body into json"), ""
        if invocation_type == "DryRun":
            return self._send(204, [], b""), f"-> {spec.logical_id} (dry run)"
        if invocation_type == "Event":
            request_id = stack.invoke_async(spec.logical_id, event)
            return self._send(202, [("x-amzn-RequestId", request_id)], b""), f"-> {spec.logical_id} (async)"
        if invocation_type != "RequestResponse":
            return self._lambda_error(400, "InvalidParameterValueException",
                                      f"unknown X-Amz-Invocation-Type {invocation_type!r}"), ""
        try:
            invocation = stack.invoke(spec.logical_id, event)
        except PoolClosed:
            return self._lambda_error(503, "ServiceException", "the local stack is shutting down"), ""
        headers = [("x-amzn-RequestId", invocation.request_id), ("X-Amz-Executed-Version", "$LATEST")]
        if invocation.ok:
            return self._send_json(200, invocation.payload.encode("utf-8"), headers), f"-> {spec.logical_id}"
        # A function error is still HTTP 200; boto3 reports it as FunctionError.
        return self._send_json(200, json.dumps(invocation.error).encode("utf-8"),
                               headers + [("X-Amz-Function-Error", "Unhandled")]), f"-> {spec.logical_id} (error)"

    def _lambda_error(self, status: int, error_type: str, message: str) -> int:
        # The shape of Lambda's service errors, which botocore turns into ClientError codes.
        body = json.dumps({"Type": "User", "message": message}).encode("utf-8")
        return self._send_json(status, body, [("x-amzn-ErrorType", error_type)])
