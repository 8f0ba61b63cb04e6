"""What API Gateway checks before a route's function runs, when the local stack runs with `--auth`.

The template decides which route needs what (infra/local/model.py reads it into `ApiRoute`):
- `AWS_IAM` routes (the API's DefaultAuthorizer: the administrative routes) need a SigV4
  signature for service `execute-api`. It is verified the way AWS does it: the signature is
  recomputed with botocore over the request as received (method, path, query, the headers
  named in SignedHeaders, the body) with the secret of the access key the request names, and
  compared. Locally the known credentials are the ones every local client already uses
  (access key `testing`, secret `testing`, region us-east-1) unless others are given.
- `ApiKeyRequired` routes (the website routes) need `x-api-key` equal to the stack's key.

Refusals are what API Gateway answers: 403 with `{"message": ...}` and `x-amzn-ErrorType`, so
a client sees locally what it would see on AWS. Open mode (the default) checks nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .apigateway import HttpRequest
from .intrinsics import REGION
from .model import ApiRoute

SERVICE = "execute-api"
LOCAL_CREDENTIALS = {"testing": "testing"}  # access key id -> secret access key
# API Gateway refuses a signature whose X-Amz-Date is more than 5 minutes off (clock skew).
MAX_SKEW = dt.timedelta(minutes=5)

MISSING_TOKEN = "Missing Authentication Token"
BAD_SIGNATURE = ("The request signature we calculated does not match the signature you provided. Check your "
                 "AWS Secret Access Key and signing method. Consult the service documentation for details.")
UNKNOWN_KEY = "The security token included in the request is invalid."
FORBIDDEN = "Forbidden"

_AUTH_FIELDS = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]+)")


@dataclass(frozen=True)
class Denied:
    """A refusal: API Gateway's status, message and error type, and the reason for the local log."""

    message: str
    error_type: str
    reason: str
    status: int = 403


@dataclass(frozen=True)
class Caller:
    """Who a granted request came from: goes into requestContext.identity, as API Gateway does."""

    access_key: str | None = None
    api_key: str | None = None


def new_api_key() -> str:
    # API Gateway's generated keys are 40 letters and digits.
    return secrets.token_hex(20)


class Gatekeeper:
    def __init__(self, api_key: str, credentials: dict[str, str] | None = None, region: str = REGION,
                 clock=lambda: dt.datetime.now(dt.UTC)) -> None:
        self.api_key = api_key
        self.credentials = dict(LOCAL_CREDENTIALS if credentials is None else credentials)
        self.region = region
        self.clock = clock

    def check(self, route: ApiRoute, request: HttpRequest, scheme: str = "http") -> Denied | Caller:
        caller = Caller()
        if route.authorizer == "AWS_IAM":
            outcome = self.verify_signature(request, scheme)
            if isinstance(outcome, Denied):
                return outcome
            caller = outcome
        if route.api_key_required:
            sent = _header(request, "x-api-key")
            if sent is None or not hmac.compare_digest(sent.encode(), self.api_key.encode()):
                reason = "no x-api-key header" if sent is None else "x-api-key is not this stack's key"
                return Denied(FORBIDDEN, "ForbiddenException", reason)
            caller = Caller(caller.access_key, sent)
        return caller

    def verify_signature(self, request: HttpRequest, scheme: str = "http") -> Denied | Caller:
        authorization = _header(request, "authorization")
        if not authorization:
            return Denied(MISSING_TOKEN, "MissingAuthenticationTokenException", "no SigV4 Authorization header")
        algorithm, _, rest = authorization.partition(" ")
        fields = dict(_AUTH_FIELDS.findall(rest))
        if algorithm != "AWS4-HMAC-SHA256" or len(fields) != 3:
            return Denied("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters "
                          "(AWS4-HMAC-SHA256).", "IncompleteSignatureException", "malformed Authorization header")
        scope = fields["Credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            return Denied("Credential should be scoped correctly: <key>/<date>/<region>/<service>/aws4_request.",
                          "IncompleteSignatureException", "malformed credential scope")
        access_key, day, region, service, _ = scope
        secret = self.credentials.get(access_key)
        if secret is None:
            return Denied(UNKNOWN_KEY, "UnrecognizedClientException", f"unknown access key {access_key}")
        if service != SERVICE or region != self.region:
            return Denied(f"Credential should be scoped to a valid region and service: {self.region}/{SERVICE}, "
                          f"not {region}/{service}.", "InvalidSignatureException", "wrong credential scope")
        stamp = _header(request, "x-amz-date") or ""
        try:
            signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            return Denied("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
                          "IncompleteSignatureException", "no X-Amz-Date")
        if abs(self.clock() - signed_at) > MAX_SKEW or not stamp.startswith(day):
            return Denied(f"Signature expired: {stamp} is now earlier or later than the 5 minutes allowed.",
                          "InvalidSignatureException", "stale X-Amz-Date")
        claimed_body_hash = _header(request, "x-amz-content-sha256")
        if claimed_body_hash not in (None, "UNSIGNED-PAYLOAD") and \
                claimed_body_hash != hashlib.sha256(request.body).hexdigest():
            return Denied(BAD_SIGNATURE, "InvalidSignatureException", "X-Amz-Content-SHA256 does not match the body")

        expected = self._signature(request, scheme, fields["SignedHeaders"].split(";"), stamp,
                                   Credentials(access_key, secret), region)
        if expected is None:
            return Denied(BAD_SIGNATURE, "InvalidSignatureException", "a signed header is missing from the request")
        if not hmac.compare_digest(expected, fields["Signature"]):
            return Denied(BAD_SIGNATURE, "InvalidSignatureException", "signature mismatch")
        return Caller(access_key=access_key)

    @staticmethod
    def _signature(request: HttpRequest, scheme: str, signed_headers: list[str], stamp: str,
                   credentials: Credentials, region: str) -> str | None:
        """The SigV4 signature of the request as received, computed by botocore's own signer."""
        received: dict[str, list[str]] = {}
        for name, value in request.headers:
            received.setdefault(name.lower(), []).append(value)
        if "host" not in signed_headers or any(name not in received for name in signed_headers):
            return None
        host = received["host"][0]
        url = f"{scheme}://{host}{request.raw_path}" + (f"?{request.query}" if request.query else "")
        signable = AWSRequest(method=request.method, url=url, data=request.body)
        for name in signed_headers:
            for value in received[name]:
                signable.headers.add_header(name, value)
        signer = SigV4Auth(credentials, SERVICE, region)
        signable.context["timestamp"] = stamp
        canonical = signer.canonical_request(signable)
        return signer.signature(signer.string_to_sign(signable, canonical), signable)


def _header(request: HttpRequest, name: str) -> str | None:
    return next((value for key, value in request.headers if key.lower() == name), None)
