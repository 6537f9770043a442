"""Exceptions raised by omnitwin.

Every exception derives from :class:`OmniTwinError`. Each leaf carries the API
error ``code`` that the REST API puts in ``{"error": {"code": ...}}`` and the
HTTP ``status`` it maps to, so the embedded engine and a remote server raise
the same classes::

    OmniTwinError
    ├── ValidationError (400, ValueError)
    │   ├── InvalidCIDR (400 invalid_cidr)
    │   ├── InvalidAddress (400 invalid_address)
    │   └── ImmutableField (400 immutable_field)
    ├── AuthenticationError (401 unauthorized)
    ├── PermissionDenied (403 forbidden)
    ├── NotFound (404 not_found, LookupError)
    │   ├── NodeNotFound (404 node_not_found)
    │   └── NoPath (404 no_path)
    ├── NotAcceptable (406 not_acceptable)
    ├── Conflict (409 conflict)
    │   ├── CIDROverlap (409 cidr_overlap)
    │   ├── Duplicate (409 duplicate)
    │   ├── InvalidTransition (409 invalid_transition)
    │   └── NoFreeSpace (409 no_free_space)
    ├── RateLimited (429 rate_limited)
    ├── StoreLocked (423 store_locked)
    ├── StreamError (502 incomplete_stream)
    └── ServerError (500 internal)
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "CIDROverlap",
    "Conflict",
    "Duplicate",
    "EngineClosed",
    "ImmutableField",
    "InvalidAddress",
    "InvalidCIDR",
    "InvalidTransition",
    "NoFreeSpace",
    "NoPath",
    "NodeNotFound",
    "NotAcceptable",
    "NotFound",
    "OmniTwinError",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "StoreLocked",
    "StreamError",
    "ValidationError",
    "error_class_for_code",
]


class OmniTwinError(Exception):
    """Base class of every omnitwin error.

    Attributes
    ----------
    code : str
        The API error code, e.g. ``"invalid_cidr"``.
    status : int
        The HTTP status that the REST API returns for this error.
    message : str
        A sentence saying what failed, on which value, and what to do.
    details : dict
        Extra context, such as the conflicting subnet.
    request_id : str or None
        The server's request id when the error came over HTTP.
    """

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.request_id = request_id

    def to_dict(self) -> dict[str, Any]:
        """Return the error body used by the REST API."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        if self.request_id is not None:
            body["request_id"] = self.request_id
        return body


class ValidationError(OmniTwinError, ValueError):
    """A request value is invalid."""

    code = "validation_error"
    status = 400


class InvalidCIDR(ValidationError):
    """A CIDR string is malformed, has host bits set or mixes families."""

    code = "invalid_cidr"


class InvalidAddress(ValidationError):
    """An IP address string is malformed."""

    code = "invalid_address"


class ImmutableField(ValidationError):
    """An update tried to change a field that never changes, such as a CIDR."""

    code = "immutable_field"


class AuthenticationError(OmniTwinError):
    """The API key is missing or unknown."""

    code = "unauthorized"
    status = 401


class PermissionDenied(OmniTwinError):
    """The API key may not perform this operation, e.g. a write with a read-only key."""

    code = "forbidden"
    status = 403


class NotFound(OmniTwinError, LookupError):
    """The requested object does not exist in this workspace."""

    code = "not_found"
    status = 404


class NodeNotFound(NotFound):
    """A topology node named in a request does not exist."""

    code = "node_not_found"


class NoPath(NotFound):
    """Both topology nodes exist but no path connects them."""

    code = "no_path"


class NotAcceptable(OmniTwinError):
    """The server cannot send a response in any media type the Accept header lists."""

    code = "not_acceptable"
    status = 406


class Conflict(OmniTwinError):
    """The request conflicts with the current state of the store."""

    code = "conflict"
    status = 409


class CIDROverlap(Conflict):
    """A new subnet overlaps an existing one without nesting in it."""

    code = "cidr_overlap"


class Duplicate(Conflict):
    """An object with the same key (CIDR, address or hostname) already exists."""

    code = "duplicate"


class InvalidTransition(Conflict):
    """A status change is not allowed by the subnet status state machine."""

    code = "invalid_transition"


class NoFreeSpace(Conflict):
    """No free block of the requested length is left in the parent."""

    code = "no_free_space"


class RateLimited(OmniTwinError):
    """The workspace has used up its request budget for the current window."""

    code = "rate_limited"
    status = 429

    def __init__(
        self,
        message: str,
        *,
        retry_after: float = 1.0,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, details=details, request_id=request_id)
        self.retry_after = retry_after


class StoreLocked(OmniTwinError):
    """The DuckDB file is locked by another process."""

    code = "store_locked"
    status = 423


class EngineClosed(OmniTwinError):
    """A closed engine, which starts no more jobs."""

    code = "engine_closed"
    status = 500


class StreamError(OmniTwinError):
    """An event stream ended without its terminal event."""

    code = "incomplete_stream"
    status = 502


class ServerError(OmniTwinError):
    """The server failed while handling a request."""

    code = "internal"
    status = 500


_BY_CODE: dict[str, type[OmniTwinError]] = {}


def _collect(cls: type[OmniTwinError]) -> None:
    _BY_CODE.setdefault(cls.code, cls)
    for sub in cls.__subclasses__():
        _collect(sub)


_collect(OmniTwinError)


def error_class_for_code(code: str) -> type[OmniTwinError]:
    """Return the exception class for an API error code, or the base class."""
    return _BY_CODE.get(code, OmniTwinError)
