"""Errors a client can act on. Each maps to one HTTP status and a stable machine-readable code.

Domain code raises these; `tailor.api.http` turns them into `{"error": {"code", "message"}}` bodies.
"""

from __future__ import annotations

from typing import Any


class TailorError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_body(self) -> dict:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class BadRequest(TailorError):
    status, code = 400, "bad_request"


class NotFound(TailorError):
    status, code = 404, "not_found"


class Conflict(TailorError):
    status, code = 409, "conflict"


class PayloadTooLarge(TailorError):
    status, code = 413, "payload_too_large"


class Invalid(TailorError):
    status, code = 422, "invalid_request"


class NotAvailableYet(TailorError):
    """A route whose capability has not been built yet: honest 501 rather than invented data."""

    status, code = 501, "not_implemented"


class Unavailable(TailorError):
    """The request is fine but the service cannot answer it yet (e.g. no model trained)."""

    status, code = 503, "unavailable"
