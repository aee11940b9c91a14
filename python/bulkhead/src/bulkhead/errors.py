"""Errors a caller can act on. A gRPC status is turned into an exception class once, here, so
application code writes `except NotFound:` instead of comparing status codes, and the same
classes are raised for input the SDK refuses before sending anything (a malformed tenant id)."""

from __future__ import annotations

import grpc

__all__ = [
    "AlreadyExists",
    "BulkheadError",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "from_rpc_error",
]


class BulkheadError(Exception):
    """Any error of the SDK. `code` is the gRPC status code (for errors found locally, the code
    the server would have answered with) and `message` the server's (or the SDK's) text."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidArgument(BulkheadError, ValueError):
    """The request was malformed (the message names the field); also raised before sending for
    input the SDK can check itself, such as ids, filter operators and vectors."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(BulkheadError, LookupError):
    """The tenant, collection, cache or key does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(BulkheadError):
    code = grpc.StatusCode.ALREADY_EXISTS


class Unauthenticated(BulkheadError):
    """Missing, unknown, expired or revoked credentials."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(BulkheadError):
    """Valid credentials, but not for this tenant or this operation (e.g. a READ key writing)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(BulkheadError):
    """A quota or rate limit of the tenant was hit; the message names it. For a rate or write
    limit, `retry_after` is the wait in seconds the server named before the limit could admit
    the call (its `grpc-retry-pushback-ms` trailer); otherwise None. The SDK does not retry."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    retry_after: float | None = None


class Unavailable(BulkheadError, ConnectionError):
    """The server could not be reached, through every retry."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(BulkheadError, TimeoutError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class FailedPrecondition(BulkheadError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Internal(BulkheadError):
    """A storage fault on the server (details only in its log)."""

    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[BulkheadError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.INTERNAL: Internal,
}


def from_rpc_error(error: grpc.RpcError) -> BulkheadError:
    """The typed exception for a failed call; codes without a class of their own (CANCELLED,
    UNIMPLEMENTED, DATA_LOSS, ...) give a plain BulkheadError carrying the code."""
    code_of = getattr(error, "code", None)
    details_of = getattr(error, "details", None)
    code: grpc.StatusCode = code_of() if code_of is not None else grpc.StatusCode.UNKNOWN
    message: str = (details_of() if details_of is not None else None) or str(error)
    if code == grpc.StatusCode.CANCELLED and message == "Timeout expired":
        # The server (tonic) honours the call's grpc-timeout itself and answers CANCELLED
        # "Timeout expired" when it runs out before the client notices: the same deadline.
        code = grpc.StatusCode.DEADLINE_EXCEEDED
    cls = _BY_CODE.get(code)
    if cls is None:
        return BulkheadError(message, code)
    typed = cls(message, code)
    if isinstance(typed, ResourceExhausted):
        typed.retry_after = _retry_pushback(error)
    return typed


def _retry_pushback(error: grpc.RpcError) -> float | None:
    """Seconds the server asked the caller to wait before trying again, if it did."""
    trailing_of = getattr(error, "trailing_metadata", None)
    for key, value in (trailing_of() if trailing_of is not None else None) or ():
        if key == "grpc-retry-pushback-ms":
            try:
                return int(value) / 1000
            except (TypeError, ValueError):
                return None
    return None
