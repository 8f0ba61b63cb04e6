"""One local "Lambda execution environment": a child process that runs one function's handler.

Started by infra/local/workers.py as `python -I -u worker_main.py '<json config>'` with the
function's environment, so nothing of the local stack's own process (its sys.path, its moto,
its environment) leaks into the handler. Standard library only: this file runs before the
function's code and layers are on sys.path.

Protocol: one JSON object per line on stdin (an invocation), one JSON object per line back
on the original stdout. The handler's own stdout (print, Powertools Logger) is redirected to
stderr, which the parent forwards to its log with the function name in front - so a print in
a handler can never corrupt the protocol.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback


class LambdaContext:
    """The attributes of the Python runtime's context object that handlers and Powertools read."""

    def __init__(self, fields: dict, deadline_ms: float) -> None:
        self.function_name = fields["function_name"]
        self.function_version = fields["function_version"]
        self.invoked_function_arn = fields["invoked_function_arn"]
        self.memory_limit_in_mb = fields["memory_limit_in_mb"]
        self.aws_request_id = fields["aws_request_id"]
        self.log_group_name = fields["log_group_name"]
        self.log_stream_name = fields["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _take_protocol_streams():
    """Keep private copies of stdin/stdout for the protocol; give the handler harmless ones."""
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)  # anything printed to stdout, from Python or C, goes to the log stream
    return requests, replies


def _load_handler(config: dict):
    module_name, _, function_name = config["handler"].replace("/", ".").rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, function_name)


def _user_traceback(exc: BaseException) -> traceback.TracebackException:
    """The exception's traceback without this file's and importlib's frames: only the user's code."""
    details = traceback.TracebackException.from_exception(exc)
    details.stack = traceback.StackSummary.from_list(
        [frame for frame in details.stack if frame.filename != __file__ and "importlib" not in frame.filename])
    return details


def _error(exc: BaseException, error_type: str, message: str) -> dict:
    """The error document Lambda's Python runtime returns for an unhandled exception."""
    return {
        "errorMessage": message,
        "errorType": error_type,
        "stackTrace": _user_traceback(exc).stack.format(),
    }


def main() -> None:
    # Ctrl-C reaches the whole process group; the parent decides when a worker stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config = json.loads(sys.argv[1])
    requests, replies = _take_protocol_streams()
    # Lambda's sys.path: the function's code (/var/task), then the layers (/opt/python), then
    # the runtime. -I already removed this file's folder and PYTHONPATH from sys.path.
    sys.path[0:0] = [config["code_dir"], *config["layer_dirs"]]
    if os.path.isdir(config["code_dir"]):
        os.chdir(config["code_dir"])  # Lambda's working directory is the code folder

    handler = None
    for line in requests:
        message = json.loads(line)
        fields = message["context"]
        os.environ["_X_AMZN_TRACE_ID"] = message.get("trace_id", "")
        try:
            if handler is None:
                # Lazy, like a cold start; a failed import is retried on the next invocation.
                try:
                    handler = _load_handler(config)
                except Exception as exc:
                    raise _InitError(exc) from exc
            context = LambdaContext(fields, message["deadline_ms"])
            result = handler(message["event"], context)
            try:
                reply = {"payload": json.dumps(result)}
            except (TypeError, ValueError) as exc:
                error_message = f"Unable to marshal response: {exc}"
                _log_exception("Runtime.MarshalError", error_message, exc, fields["aws_request_id"])
                reply = {"error": _error(exc, "Runtime.MarshalError", error_message)}
        except _InitError as wrapper:
            exc = wrapper.__cause__
            error_type = _init_error_type(exc)
            if error_type == "Runtime.HandlerNotFound":
                error_message = f"Handler '{config['handler']}' missing: {exc}"
            else:
                error_message = f"Unable to import module '{config['handler'].rpartition('.')[0]}': {exc}"
            _log_exception(error_type, error_message, exc, fields["aws_request_id"])
            reply = {"error": _error(exc, error_type, error_message)}
        except Exception as exc:  # the handler raised: report it, keep the environment warm
            _log_exception(type(exc).__name__, str(exc), exc, fields["aws_request_id"])
            reply = {"error": _error(exc, type(exc).__name__, str(exc))}
        replies.write(json.dumps(reply).encode("utf-8") + b"\n")
        replies.flush()


class _InitError(Exception):
    """Importing the handler module failed (Lambda's init phase)."""


def _init_error_type(exc: BaseException) -> str:
    """The errorType Lambda's Python runtime reports when the handler cannot be loaded."""
    if isinstance(exc, SyntaxError):
        return "Runtime.UserCodeSyntaxError"
    if isinstance(exc, ImportError):
        return "Runtime.ImportModuleError"
    if isinstance(exc, AttributeError):
        return "Runtime.HandlerNotFound"
    return type(exc).__name__


def _log_exception(error_type: str, message: str, exc: BaseException, request_id: str) -> None:
    # Same shape as the Lambda runtime's log line, then the traceback of the user's code.
    print(f"[ERROR] {error_type}: {message} (request {request_id})", file=sys.stderr)
    print("".join(_user_traceback(exc).format()), end="", file=sys.stderr)
    sys.stderr.flush()


if __name__ == "__main__":
    main()
