"""Every way a request can be refused, each with its ARM error code and HTTP status.

The HTTP adapter turns these into `{"error": {"code", "message", "target"}}` in one place; nothing else in the
code base picks status codes.
"""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    status: int = 400
    code: str = "BadRequest"

    def __init__(
        self,
        message: str,
        target: str | None = None,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.target = target
        self.details = details
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        return {"error": error}


class InvalidParameter(ArmError):
    status, code = 400, "InvalidParameter"


class MissingRequiredProperty(ArmError):
    status, code = 400, "InvalidParameter"


class PropertyChangeNotAllowed(ArmError):
    status, code = 400, "PropertyChangeNotAllowed"


class InvalidRequestContent(ArmError):
    status, code = 400, "InvalidRequestContent"


class InvalidResourceName(ArmError):
    status, code = 400, "InvalidResourceName"


class NotSupported(ArmError):
    """A valid Azure request for something this server does not do (yet): VM capture, community sources, edge zones."""

    status, code = 400, "NotSupported"


class InvalidLocation(ArmError):
    status, code = 400, "LocationNotAvailableForResourceType"


class MissingApiVersion(ArmError):
    status, code = 400, "MissingApiVersionParameter"


class InvalidApiVersion(ArmError):
    status, code = 400, "InvalidApiVersionParameter"


class Unauthenticated(ArmError):
    status, code = 401, "AuthenticationFailed"


class NotFound(ArmError):
    status, code = 404, "ResourceNotFound"


class ResourceGroupNotFound(ArmError):
    status, code = 404, "ResourceGroupNotFound"


class ParentResourceNotFound(ArmError):
    status, code = 404, "ParentResourceNotFound"


class Conflict(ArmError):
    status, code = 409, "Conflict"


class OperationNotAllowed(ArmError):
    status, code = 409, "OperationNotAllowed"


class QuotaExceeded(ArmError):
    status, code = 409, "QuotaExceeded"


class MethodNotAllowed(ArmError):
    status, code = 405, "MethodNotAllowed"


class InternalError(ArmError):
    status, code = 500, "InternalServerError"
