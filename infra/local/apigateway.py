"""What API Gateway (REST API, Lambda proxy integration) does between a client and a handler.

- match a request against the template's `Type: Api` events (most specific resource wins,
  as in API Gateway: literal segments before `{param}`, `{param}` before `{proxy+}`);
- build the proxy event (payload format 1.0), shaped like `sam local generate-event apigateway
  aws-proxy` and like what API Gateway really sends: `path` and `pathParameters` stay
  URL-encoded, query string values are decoded, absent parts are null;
- turn the handler's proxy response back into an HTTP response, or a 502 when it is malformed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fnmatch
import hashlib
import json
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .model import ApiRoute

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass
class HttpRequest:
    method: str
    raw_path: str  # as sent, still percent-encoded
    query: str
    headers: list[tuple[str, str]]  # in arrival order, names as sent
    body: bytes
    source_ip: str


@dataclass
class RouteMatch:
    route: ApiRoute
    path_parameters: dict[str, str]


@dataclass
class NoRoute:
    status: int  # 404 (no such resource) or 405 (resource exists, method does not)
    allowed_methods: tuple[str, ...] = ()


class MalformedProxyResponse(ValueError):
    """The handler's return value is not a valid Lambda proxy response (API Gateway answers 502)."""


def _segment_rank(segment: str) -> int:
    if segment.startswith("{") and segment.endswith("+}"):
        return 2
    if segment.startswith("{") and segment.endswith("}"):
        return 1
    return 0


def _match_path(template: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    parameters = {}
    for index, part in enumerate(template):
        rank = _segment_rank(part)
        if rank == 2:  # greedy: the rest of the path, at least one segment
            rest = segments[index:]
            if not rest:
                return None
            parameters[part[1:-2]] = "/".join(rest)
            return parameters
        if index >= len(segments):
            return None
        if rank == 1:
            parameters[part[1:-1]] = segments[index]
        elif part != segments[index]:
            return None
    return parameters if len(segments) == len(template) else None


class RouteTable:
    def __init__(self, routes: list[ApiRoute]) -> None:
        by_path: dict[tuple[str, ...], dict[str, ApiRoute]] = {}
        for route in routes:
            by_path.setdefault(route.segments, {})[route.method] = route
        # Most specific first, so `/v1/models` is tried before `/v1/{anything}`.
        self._resources = sorted(by_path.items(), key=lambda item: [_segment_rank(s) for s in item[0]])

    def match(self, method: str, raw_path: str) -> RouteMatch | NoRoute:
        segments = [part for part in raw_path.split("/") if part]
        for template, methods in self._resources:
            parameters = _match_path(template, segments)
            if parameters is None:
                continue
            route = methods.get(method.upper()) or methods.get("ANY")
            if route is None:
                return NoRoute(405, tuple(sorted(methods)))
            return RouteMatch(route, parameters)
        return NoRoute(404)


def _request_time(now: dt.datetime) -> str:
    # API Gateway's CLF timestamp, e.g. 09/Apr/2015:12:34:56 +0000 (month names not localized).
    return f"{now:%d}/{_MONTHS[now.month - 1]}/{now:%Y:%H:%M:%S} +0000"


def _is_binary(content_type: str, binary_media_types: tuple[str, ...]) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return any(fnmatch.fnmatch(media_type, pattern.lower()) for pattern in binary_media_types)


def build_proxy_event(match: RouteMatch, request: HttpRequest, request_id: str, local_port: int) -> dict:
    """The Lambda proxy integration event (payload format 1.0) for one request."""
    route = match.route
    now = dt.datetime.now(dt.UTC)
    lower_names = {name.lower() for name, _ in request.headers}
    forwarded_for = next((value for name, value in request.headers if name.lower() == "x-forwarded-for"), None)
    header_pairs = [(name, value) for name, value in request.headers if name.lower() != "x-forwarded-for"]
    # Headers API Gateway adds on the way in.
    caller = f"{forwarded_for}, {request.source_ip}" if forwarded_for else request.source_ip
    header_pairs.append(("X-Forwarded-For", caller))
    header_pairs.append(("X-Forwarded-Port", str(local_port)))
    header_pairs.append(("X-Forwarded-Proto", "http"))
    if "x-amzn-trace-id" not in lower_names:
        header_pairs.append(("X-Amzn-Trace-Id", f"Root=1-{int(now.timestamp()):08x}-{uuid.uuid4().hex[:24]}"))
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in header_pairs:
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)

    query_pairs = parse_qsl(request.query, keep_blank_values=True)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in query_pairs:
        query[name] = value
        multi_query.setdefault(name, []).append(value)

    body, is_base64 = None, False
    if request.body:
        content_type = next((value for name, value in request.headers if name.lower() == "content-type"), "")
        # Declared binary media types always travel base64-encoded; so does anything that is
        # not text (API Gateway would mangle it; base64 keeps the bytes).
        is_base64 = _is_binary(content_type, route.binary_media_types)
        if not is_base64:
            try:
                body = request.body.decode("utf-8")
            except UnicodeDecodeError:
                is_base64 = True
        if is_base64:
            body = base64.b64encode(request.body).decode("ascii")

    host = headers.get("Host") or headers.get("host") or "127.0.0.1"
    user_agent = next((value for name, value in request.headers if name.lower() == "user-agent"), None)
    return {
        "resource": route.path,
        "path": request.raw_path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": match.path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": hashlib.sha1(route.path.encode()).hexdigest()[:6],
            "resourcePath": route.path,
            "httpMethod": request.method,
            "extendedRequestId": request_id,
            "requestTime": _request_time(now),
            "path": f"/{route.stage}{request.raw_path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": route.stage,
            "domainPrefix": host.split(".", 1)[0],
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": request.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": user_agent,
                "user": None,
            },
            "domainName": host,
            "apiId": "local",
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def proxy_response(payload: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body from a handler's proxy response (JSON text)."""
    try:
        response = json.loads(payload)
    except ValueError as exc:
        raise MalformedProxyResponse(f"not JSON: {exc}") from exc
    if not isinstance(response, dict):
        raise MalformedProxyResponse(f"expected an object with statusCode, got {type(response).__name__}")
    try:
        status = int(response.get("statusCode"))
    except (TypeError, ValueError):
        raise MalformedProxyResponse(f"statusCode must be an integer, got {response.get('statusCode')!r}") from None
    if not 100 <= status <= 599:
        raise MalformedProxyResponse(f"statusCode {status} is not an HTTP status")
    body = response.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedProxyResponse(f"body must be a string (JSON-encode it), got {type(body).__name__}")
    for part in ("headers", "multiValueHeaders"):
        if not isinstance(response.get(part) or {}, dict):
            raise MalformedProxyResponse(f"{part} must be an object")

    # API Gateway merges the two header maps; a pair present in both appears once.
    headers: list[tuple[str, str]] = []
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.extend((name, _header_value(value)) for value in (values if isinstance(values, list) else [values]))
    for name, value in (response.get("headers") or {}).items():
        if (name, _header_value(value)) not in headers:
            headers.append((name, _header_value(value)))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))  # API Gateway's default

    if response.get("isBase64Encoded") and body is not None:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedProxyResponse(f"isBase64Encoded is true but body is not base64: {exc}") from exc
    else:
        raw = (body or "").encode("utf-8")
    return status, headers, raw


def _header_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")
