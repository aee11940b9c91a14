"""One real `bulkhead serve` per test session (the binary from $BULKHEAD_BIN, else the debug
build in the cargo target directory); every test that needs isolation makes its own tenant."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from bulkhead import AdminClient, AsyncClient, Client, TenantHandle
from bulkhead.testing import BulkheadServer


def server_binary() -> str:
    if os.environ.get("BULKHEAD_BIN"):
        return os.environ["BULKHEAD_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache/bulkhead-target")
    return str(Path(target) / "debug" / "bulkhead")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def server() -> Iterator[BulkheadServer]:
    with BulkheadServer(server_binary()) as srv:
        yield srv


@pytest.fixture(scope="session")
def client(server: BulkheadServer) -> Iterator[Client]:
    with Client(server.endpoint) as c:
        yield c


@pytest.fixture(scope="session")
def admin(server: BulkheadServer, client: Client) -> AdminClient:
    return client.admin(server.admin_token)


NewTenant = Callable[..., tuple[str, str]]


@pytest.fixture(scope="session")
def new_tenant(admin: AdminClient) -> NewTenant:
    """Makes a tenant with a fresh id (settings as keyword arguments) and a key of `role`
    (default tenant_admin); returns (tenant id, key secret)."""

    def make(role: str = "tenant_admin", **settings: float) -> tuple[str, str]:
        tenant_id = unique("t")
        admin.create_tenant(tenant_id, **settings)  # type: ignore[arg-type]
        _, secret = admin.create_key(tenant_id, role, description="python sdk tests")
        return tenant_id, secret

    return make


@pytest.fixture
def tenant(client: Client, new_tenant: NewTenant) -> TenantHandle:
    """A handle on a fresh tenant, with a TENANT_ADMIN key."""
    tenant_id, secret = new_tenant()
    return client.tenant(tenant_id, api_key=secret)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def aclient(server: BulkheadServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.endpoint) as c:
        yield c
