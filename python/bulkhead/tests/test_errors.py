"""Typed errors for each status the server answers with, retries on UNAVAILABLE only, and the
deadline of every call."""

from __future__ import annotations

import socket
import time

import grpc
import pytest
from conftest import NewTenant

from bulkhead import AsyncClient, Client, Record, TenantHandle
from bulkhead.errors import (
    AlreadyExists,
    BulkheadError,
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    from_rpc_error,
)


def test_each_status_has_its_exception(
    tenant: TenantHandle, client: Client, new_tenant: NewTenant
) -> None:
    tenant.create_collection("docs", 3)
    with pytest.raises(AlreadyExists) as exists:
        tenant.create_collection("docs", 3)
    assert exists.value.code == grpc.StatusCode.ALREADY_EXISTS and "docs" in exists.value.message

    with pytest.raises(NotFound) as missing:
        tenant.get_collection("nope")
    assert missing.value.code == grpc.StatusCode.NOT_FOUND
    assert isinstance(missing.value, BulkheadError) and isinstance(missing.value, LookupError)

    with pytest.raises(InvalidArgument, match="dimension mismatch") as invalid:
        tenant.upsert("docs", [Record("r", [0.1, 0.2])])
    assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT

    with pytest.raises(Unauthenticated) as unauthenticated:
        client.tenant(tenant.tenant_id, api_key="bh_not_a_key").list_collections()
    assert unauthenticated.value.code == grpc.StatusCode.UNAUTHENTICATED

    tenant_id, read_key = new_tenant("read")
    reader = client.tenant(tenant_id, api_key=read_key)
    with pytest.raises(PermissionDenied, match="WRITE") as denied:
        reader.create_collection("docs", 3)
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert str(denied.value).startswith("PERMISSION_DENIED: ")


def test_quota_gives_resource_exhausted(client: Client, new_tenant: NewTenant) -> None:
    tenant_id, secret = new_tenant(max_collections=1, max_records=3)
    handle = client.tenant(tenant_id, api_key=secret)
    handle.create_collection("one", 2)
    with pytest.raises(ResourceExhausted) as collections:
        handle.create_collection("two", 2)
    assert collections.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "collection" in collections.value.message
    handle.upsert("one", [Record(f"r{i}", [1.0, 0.0]) for i in range(3)])
    with pytest.raises(ResourceExhausted, match="record"):
        handle.upsert("one", [Record("r4", [1.0, 0.0])])


def test_rate_limit_gives_resource_exhausted_without_retrying(
    client: Client, new_tenant: NewTenant
) -> None:
    tenant_id, secret = new_tenant(requests_per_second=0.1, burst=1)
    handle = client.tenant(tenant_id, api_key=secret)
    with pytest.raises(ResourceExhausted) as refused:
        for _ in range(5):
            handle.list_collections()
    # One request every 10 s: the server held the refusal a second and names about nine more.
    assert refused.value.retry_after is not None
    assert 5 < refused.value.retry_after <= 10


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unavailable_is_retried_with_backoff_then_raised() -> None:
    endpoint = f"127.0.0.1:{closed_port()}"
    # 4 attempts: 3 pauses of 0.1-0.2, 0.2-0.4 and 0.4-0.8 s (jittered 50-100 %).
    with Client(endpoint, timeout=5, max_attempts=4, initial_backoff=0.2) as c:
        handle = c.tenant("acme", api_key="bh_x")
        started = time.monotonic()
        with pytest.raises(Unavailable) as info:
            handle.list_collections()
        elapsed = time.monotonic() - started
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert isinstance(info.value, ConnectionError)
    assert 0.7 <= elapsed < 5, elapsed
    with Client(endpoint, max_attempts=1) as c:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            c.tenant("acme", api_key="bh_x").list_collections()
        assert time.monotonic() - started < 0.7


async def test_async_unavailable_is_retried_with_backoff_then_raised() -> None:
    async with AsyncClient(f"127.0.0.1:{closed_port()}", max_attempts=3, initial_backoff=0.2) as c:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await c.tenant("acme", api_key="bh_x").list_collections()
        assert 0.3 <= time.monotonic() - started < 5


def test_other_statuses_are_not_retried(client: Client) -> None:
    # A NOT_FOUND answers at once: no backoff pauses (4 attempts would take >= 0.7 s here).
    handle = client.tenant("nobody-here", api_key="bh_x")
    started = time.monotonic()
    with pytest.raises(Unauthenticated):
        handle.list_collections()
    assert time.monotonic() - started < 0.5


def test_every_call_has_a_deadline(client: Client, new_tenant: NewTenant) -> None:
    # The server answers a request over the tenant's rate limit only after 100 ms: a 30 ms
    # deadline ends the call first, and DEADLINE_EXCEEDED is not retried.
    tenant_id, secret = new_tenant(requests_per_second=1, burst=1)
    with Client(client.endpoint, timeout=0.03, max_attempts=4) as c:
        handle = c.tenant(tenant_id, api_key=secret)
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as info:
            for _ in range(3):
                handle.list_collections()
        elapsed = time.monotonic() - started
    assert isinstance(info.value, TimeoutError)
    assert elapsed < 0.3, elapsed


def test_statuses_without_a_class_keep_their_code() -> None:
    class FakeError(grpc.RpcError):  # type: ignore[misc]
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.DATA_LOSS

        def details(self) -> str:
            return "lost"

    error = from_rpc_error(FakeError())
    assert type(error) is BulkheadError
    assert (error.code, error.message) == (grpc.StatusCode.DATA_LOSS, "lost")

    class ServerTimeout(FakeError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.CANCELLED

        def details(self) -> str:
            return "Timeout expired"  # how the server reports the call's own grpc-timeout

    assert isinstance(from_rpc_error(ServerTimeout()), DeadlineExceeded)
