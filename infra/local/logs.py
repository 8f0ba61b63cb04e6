"""CloudWatch Logs subscription filters, emulated: a function's log lines -> another function.

On AWS an `AWS::Logs::SubscriptionFilter` on a function's log group sends the log events that
match its filter pattern, in batches, to a destination function - an asynchronous invocation
with the event `{"awslogs": {"data": base64(gzip(json))}}`, where the JSON is

    {"messageType": "DATA_MESSAGE", "owner": "<account>", "logGroup": "/aws/lambda/<function>",
     "logStream": "...", "subscriptionFilters": ["<filter name>"],
     "logEvents": [{"id": "...", "timestamp": <ms>, "message": "<the line>"}, ...]}

Locally, each line a source function's worker writes (print or a logger on stdout) is matched
here as the worker's log is forwarded (infra/local/workers.py); matching lines are batched per
filter and worker (a worker is one log stream) and delivered through the stack's asynchronous
invoke, so retries and the dead-letter queue behave as for S3 events. A batch goes out when it
reaches MAX_BATCH_LINES lines (or MAX_BATCH_BYTES), and every FLUSH_SECONDS in any case.
`LogSubscriptionDelivery.drain()` (`LocalStack.drain_logs()`) waits until every line matched so
far has been delivered and its invocation has finished.

Filter patterns: the JSON subset `{ SELECTOR OP VALUE }` with SELECTOR `$.a.b` or `$.a[0]`, OP
`=` `!=` for strings (quoted, or a bare word where `*` is a wildcard), `=` `!=` `<` `<=` `>` `>=` for
numbers, joined with `&&` or `||` and grouped with parentheses (mixing `&&` and `||` needs
parentheses). A line matches only if it is a JSON object; a comparison on a missing field never
matches. Anything else (IS NULL, EXISTS, text patterns, `$.*`) is refused at startup with
a TemplateError rather than matched differently from CloudWatch.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .intrinsics import TemplateError

if TYPE_CHECKING:
    from .model import LogSubscription

log = logging.getLogger("infra.local")

FLUSH_SECONDS = 0.2
MAX_BATCH_LINES = 500
# PutLogEvents' batch limit; CloudWatch never sends a subscription batch larger than what it took in.
MAX_BATCH_BYTES = 1_048_576


class FilterPatternError(TemplateError):
    """A filter pattern outside the subset the local stack can match exactly as CloudWatch does."""


# -- filter patterns -------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\))
    | (?P<selector>\$(?:\.[A-Za-z_][\w-]*|\[\d+\])+)
    | (?P<word>[^\s()=!<>&|"{}]+)
    )""", re.VERBOSE)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_STRING_OPS = ("=", "!=")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
_MISSING = object()


@dataclass(frozen=True)
class _Comparison:
    path: tuple[str | int, ...]
    op: str
    value: str | float  # str: a string comparison (may hold * wildcards); float: a numeric one

    def matches(self, document: Any) -> bool:
        found = _select(document, self.path)
        if found is _MISSING:
            return False
        if isinstance(self.value, str):
            equal = isinstance(found, str) and _wildcard(self.value).fullmatch(found) is not None
            return equal if self.op == "=" else not equal
        number = found if isinstance(found, int | float) and not isinstance(found, bool) else None
        if number is None:
            return self.op == "!="
        return {
            "=": number == self.value, "!=": number != self.value, "<": number < self.value,
            "<=": number <= self.value, ">": number > self.value, ">=": number >= self.value,
        }[self.op]


@dataclass(frozen=True)
class _Junction:
    op: str  # "&&" or "||"
    terms: tuple[_Comparison | _Junction, ...]

    def matches(self, document: Any) -> bool:
        results = (term.matches(document) for term in self.terms)
        return all(results) if self.op == "&&" else any(results)


def _select(document: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(document, list) or step >= len(document):
                return _MISSING
        elif not isinstance(document, dict) or step not in document:
            return _MISSING
        document = document[step]
    return document


_WILDCARDS: dict[str, re.Pattern] = {}


def _wildcard(value: str) -> re.Pattern:
    if value not in _WILDCARDS:
        _WILDCARDS[value] = re.compile(".*".join(re.escape(part) for part in value.split("*")), re.DOTALL)
    return _WILDCARDS[value]


@dataclass(frozen=True)
class FilterPattern:
    """A parsed JSON filter pattern; `matches(line)` says whether CloudWatch would deliver the line."""

    text: str
    _root: _Comparison | _Junction

    def matches(self, line: str) -> bool:
        stripped = line.strip()
        if not stripped.startswith("{"):
            return False  # cheap exit for the plain text lines most logs are made of
        try:
            document = json.loads(stripped)
        except ValueError:
            return False
        return isinstance(document, dict) and self._root.matches(document)

    def matches_object(self, document: Any) -> bool:
        return isinstance(document, dict) and self._root.matches(document)


def parse_filter_pattern(text: str) -> FilterPattern:
    """Parse `{ $.record = "recommendation" }` and the rest of the subset in the module docstring."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise FilterPatternError(f"filter pattern {text!r}: only JSON patterns `{{ $.field = value }}` are emulated")
    tokens = _tokenize(text, body[1:-1])
    parser = _Parser(text, tokens)
    root = parser.expression()
    if parser.position != len(tokens):
        raise FilterPatternError(f"filter pattern {text!r}: unexpected {tokens[parser.position][1]!r}")
    return FilterPattern(text, root)


def _tokenize(text: str, body: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while body[position:].strip():
        match = _TOKEN.match(body, position)
        if match is None or match.end() == position:
            raise FilterPatternError(f"filter pattern {text!r}: cannot read {body[position:].strip()!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, str]]) -> None:
        self.text, self.tokens, self.position = text, tokens, 0

    def _fail(self, what: str) -> FilterPatternError:
        return FilterPatternError(f"filter pattern {self.text!r}: {what} (emulated: {{ $.a.b = \"text\" }}, "
                                  "{ $.a = 5 }, <, <=, >, >=, !=, && and || with parentheses)")

    def _next(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise self._fail("ends too early")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def expression(self) -> _Comparison | _Junction:
        terms = [self.term()]
        junction = None
        while self._peek() in ("&&", "||"):
            op = self._next()[1]
            if junction not in (None, op):
                raise self._fail("mixes && and || without parentheses")
            junction = op
            terms.append(self.term())
        return terms[0] if junction is None else _Junction(junction, tuple(terms))

    def term(self) -> _Comparison | _Junction:
        kind, value = self._next()
        if value == "(" and kind == "op":
            inner = self.expression()
            if self._next() != ("op", ")"):
                raise self._fail("a parenthesis is not closed")
            return inner
        if kind != "selector":
            raise self._fail(f"expected a selector such as $.field, got {value!r}")
        path = tuple(int(step[1:-1]) if step.startswith("[") else step[1:]
                     for step in re.findall(r"\.[^.\[]+|\[\d+\]", value[1:]))
        op_kind, op = self._next()
        if op_kind != "op" or op not in _NUMBER_OPS:
            raise self._fail(f"expected a comparison after {value}, got {op!r}")
        value_kind, raw = self._next()
        operand: str | float
        if value_kind == "string":
            operand = unquoted = re.sub(r"\\(.)", r"\1", raw[1:-1])
            if "*" in unquoted:  # CloudWatch documents wildcards for bare words only
                raise self._fail(f"a * inside the quoted string {raw} is not emulated; write it unquoted")
        elif value_kind == "word" and raw.startswith("%"):
            raise self._fail(f"regular expression {raw} is not emulated")
        elif value_kind == "word" and _NUMBER.fullmatch(raw):
            operand = float(raw)
            if not math.isfinite(operand):
                raise self._fail(f"{raw} is not a finite number")
        elif value_kind == "word" and raw.upper() not in ("NULL", "TRUE", "FALSE", "EXISTS", "IS", "NOT"):
            operand = raw  # a bare word is a string, as in CloudWatch
        else:
            raise self._fail(f"expected a string or a number after {value} {op}, got {raw!r}")
        if isinstance(operand, str) and op not in _STRING_OPS:
            raise self._fail(f"{op} compares numbers, not the string {raw}")
        return _Comparison(path, op, operand)


# -- events ----------------------------------------------------------------------------------

def encode_subscription_event(*, owner: str, log_group: str, log_stream: str, filter_names: list[str],
                              log_events: list[dict]) -> dict:
    """The event CloudWatch Logs gives a subscribed function: base64 of gzip of the JSON document."""
    document = {
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": list(filter_names),
        "logEvents": log_events,
    }
    data = gzip.compress(json.dumps(document, separators=(",", ":")).encode("utf-8"))
    return {"awslogs": {"data": base64.b64encode(data).decode("ascii")}}


def decode_subscription_event(event: dict) -> dict:
    """The JSON document inside a subscription event (the inverse of encode_subscription_event)."""
    return json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))


_event_counter = itertools.count()


def new_event_id(timestamp_ms: int) -> str:
    """A unique log event id; CloudWatch's are 56-digit strings that sort by time."""
    return f"{timestamp_ms:015d}{next(_event_counter):041d}"


# -- batching and delivery -------------------------------------------------------------------

@dataclass
class _Batch:
    subscription: LogSubscription
    log_stream: str
    events: list[dict]
    size: int = 0


# deliver(function logical id, event, done): start an asynchronous invocation and call done()
# once it has finished - succeeded, or failed its last retry.
Deliver = Callable[[str, dict, Callable[[], None]], None]


class LogSubscriptionDelivery:
    """Matches source functions' log lines, batches them, and delivers the batches.

    `listener_for(function)` gives the callback a function's workers call for each log line
    (None for a function no filter reads); a background thread flushes every `flush_seconds`.
    """

    def __init__(self, subscriptions: list[LogSubscription], deliver: Deliver, owner: str,
                 flush_seconds: float = FLUSH_SECONDS, max_lines: int = MAX_BATCH_LINES,
                 max_bytes: int = MAX_BATCH_BYTES) -> None:
        self.subscriptions = list(subscriptions)
        self._deliver = deliver
        self._owner = owner
        self._flush_seconds = flush_seconds
        self._max_lines = max_lines
        self._max_bytes = max_bytes
        self._batches: dict[tuple[str, int], _Batch] = {}
        self._in_flight = 0
        self.delivered_batches = 0
        self.delivered_lines = 0
        self._condition = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="log-subscriptions")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the flush thread; lines not yet delivered are dropped (the stack is going away)."""
        self._stopping.set()
        self._thread.join(timeout=self._flush_seconds + 5)
        with self._condition:
            dropped = sum(len(batch.events) for batch in self._batches.values())
            self._batches.clear()
        if dropped:
            log.info("log subscriptions: %d matched line(s) not delivered at shutdown", dropped)

    def listener_for(self, function: str) -> Callable[[int, str], None] | None:
        subscriptions = [s for s in self.subscriptions if s.source_function == function]
        if not subscriptions:
            return None

        def listener(pid: int, line: str) -> None:
            self.feed(subscriptions, pid, line)

        return listener

    def feed(self, subscriptions: list[LogSubscription], pid: int, line: str,
             timestamp_ms: int | None = None) -> None:
        """One line a worker of the source function wrote; batch it for each filter it matches."""
        full: list[_Batch] = []
        for subscription in subscriptions:
            if not subscription.pattern.matches(line):
                continue
            stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
            with self._condition:
                key = (subscription.logical_id, pid)
                batch = self._batches.get(key)
                if batch is None:
                    batch = self._batches[key] = _Batch(subscription, f"local/{pid}", [])
                batch.events.append({"id": new_event_id(stamp), "timestamp": stamp, "message": line})
                batch.size += len(line.encode("utf-8")) + 26  # what PutLogEvents counts per event
                if len(batch.events) >= self._max_lines or batch.size >= self._max_bytes:
                    full.append(self._batches.pop(key))
                    self._in_flight += 1
        for batch in full:
            self._send(batch)

    def flush(self) -> int:
        """Deliver every pending batch now; return how many were sent."""
        with self._condition:
            batches = list(self._batches.values())
            self._batches.clear()
            self._in_flight += len(batches)
        for batch in batches:
            self._send(batch)
        return len(batches)

    def pending(self) -> tuple[int, int]:
        """(matched lines not yet handed to an invocation, deliveries whose invocation has not finished)."""
        with self._condition:
            return sum(len(batch.events) for batch in self._batches.values()), self._in_flight

    def drain(self, timeout: float = 30.0) -> None:
        """Block until every line matched so far is delivered and those invocations have finished.

        Lines a destination prints while handling a batch are waited for too (when it is itself
        a source). Raises TimeoutError if that takes longer than `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.flush()
            with self._condition:
                done = self._condition.wait_for(lambda: self._in_flight == 0 or bool(self._batches),
                                                timeout=max(0.0, deadline - time.monotonic()))
                if done and self._in_flight == 0 and not self._batches:
                    return
                if not done:
                    lines = sum(len(batch.events) for batch in self._batches.values())
                    raise TimeoutError(f"log subscriptions not drained after {timeout:g} s: {lines} line(s) "
                                       f"pending, {self._in_flight} invocation(s) still running")

    def _send(self, batch: _Batch) -> None:
        """Hand one batch to an asynchronous invocation; the caller has counted it in _in_flight."""
        subscription = batch.subscription
        try:
            event = encode_subscription_event(
                owner=self._owner, log_group=subscription.log_group, log_stream=batch.log_stream,
                filter_names=[subscription.name], log_events=batch.events)
            self._deliver(subscription.destination_function, event, self._done)
        except Exception:
            log.exception("could not deliver %d log line(s) of %s to %s", len(batch.events),
                          subscription.source_function, subscription.destination_function)
            self._done()
            return
        with self._condition:
            self.delivered_batches += 1
            self.delivered_lines += len(batch.events)

    def _done(self) -> None:
        with self._condition:
            self._in_flight -= 1
            self._condition.notify_all()

    def _run(self) -> None:
        while not self._stopping.wait(self._flush_seconds):
            try:
                self.flush()
            except Exception:  # never let the flusher die: later lines would wait forever
                log.exception("log subscription flush failed")
