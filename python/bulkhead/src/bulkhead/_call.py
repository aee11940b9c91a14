"""The policy every unary call follows: a deadline on each attempt, the handle's own credential
attached explicitly (never taken from shared state), and retries with jittered exponential
backoff on UNAVAILABLE only, the one status that says the request never reached the engine.
The first attempt is a bare stub call inside one `try`, so the common path costs nothing extra."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from bulkhead.errors import InvalidArgument, from_rpc_error

R = TypeVar("R")
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Policy:
    """Deadline of each attempt (seconds), attempts in all (the first included), and the first
    and largest pause between attempts; each pause doubles, jittered to 50-100 %.
    `stream_timeout` is the deadline of a whole Arrow import or export, which moves a file at
    the pace of the tenant's write limit or of the data, not of one call (the server's own
    bound, `stream-timeout-secs`, is an hour by default)."""

    timeout: float = 30.0
    max_attempts: int = 4
    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    stream_timeout: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("timeout", "stream_timeout"):
            if getattr(self, name) <= 0:
                raise InvalidArgument(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_attempts < 1:
            raise InvalidArgument(f"max_attempts must be at least 1, got {self.max_attempts}")

    def pauses(self) -> Iterator[float]:
        """The pause before each retry, so `max_attempts - 1` of them."""
        backoff = self.initial_backoff
        for _ in range(self.max_attempts - 1):
            yield backoff * random.uniform(0.5, 1.0)
            backoff = min(backoff * 2, self.max_backoff)


def bearer(secret: str, what: str) -> Metadata:
    """The authorization metadata for `secret`, built once per handle."""
    if (
        not isinstance(secret, str)
        or not secret
        or not secret.isascii()
        or not secret.isprintable()
    ):
        raise InvalidArgument(f"the {what} must be a non-empty printable ASCII string")
    return (("authorization", f"Bearer {secret}"),)


def _retryable(error: grpc.RpcError) -> bool:
    code = getattr(error, "code", None)
    return code is not None and code() == grpc.StatusCode.UNAVAILABLE


class Caller:
    """Sends unary requests for one handle (credential + policy)."""

    __slots__ = ("metadata", "policy", "timeout")

    def __init__(self, policy: Policy, metadata: Metadata) -> None:
        self.policy = policy
        self.timeout = policy.timeout
        self.metadata = metadata

    def __call__(self, method: Callable[..., R], request: Any) -> R:
        try:
            return method(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as e:
            error = e
        for pause in self.policy.pauses():
            if not _retryable(error):
                break
            time.sleep(pause)
            try:
                return method(request, timeout=self.timeout, metadata=self.metadata)
            except grpc.RpcError as e:
                error = e
        raise from_rpc_error(error) from error


class AsyncCaller:
    """Caller for grpc.aio stubs."""

    __slots__ = ("metadata", "policy", "timeout")

    def __init__(self, policy: Policy, metadata: Metadata) -> None:
        self.policy = policy
        self.timeout = policy.timeout
        self.metadata = metadata

    async def __call__(self, method: Callable[..., Awaitable[R]], request: Any) -> R:
        try:
            return await method(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as e:
            error = e
        for pause in self.policy.pauses():
            if not _retryable(error):
                break
            await asyncio.sleep(pause)
            try:
                return await method(request, timeout=self.timeout, metadata=self.metadata)
            except grpc.RpcError as e:
                error = e
        raise from_rpc_error(error) from error
