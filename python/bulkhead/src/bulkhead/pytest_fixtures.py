"""Pytest fixtures for suites that test code built on the SDK against a real server (the
LangChain and LlamaIndex integrations use them): one `bulkhead serve` per session, a fresh
tenant per suite, a fresh collection per test. A suite loads them with
`pytest_plugins = ["bulkhead.pytest_fixtures"]` and names itself with a `tenant_prefix`
fixture. Needs pytest and pytest-asyncio, which the SDK itself does not depend on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio

from bulkhead import AsyncClient, AsyncTenantHandle, Client, TenantHandle
from bulkhead.errors import NotFound
from bulkhead.testing import BulkheadServer


@pytest.fixture(scope="session")
def server() -> Iterator[BulkheadServer]:
    with BulkheadServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def client(server: BulkheadServer) -> Iterator[Client]:
    with Client(server.endpoint) as c:
        yield c


@pytest.fixture(scope="session")
def new_tenant(
    server: BulkheadServer, client: Client, tenant_prefix: str
) -> Callable[[str], tuple[str, str]]:
    """Creates a tenant with a fresh id and a WRITE key; returns (tenant id, key secret)."""
    admin = client.admin(admin_token=server.admin_token)

    def make(prefix: str) -> tuple[str, str]:
        tenant_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
        admin.create_tenant(tenant_id)
        _, secret = admin.create_key(tenant_id, "write", description=f"{tenant_prefix} tests")
        return tenant_id, secret

    return make


@pytest.fixture(scope="session")
def main_tenant(new_tenant: Callable[[str], tuple[str, str]], tenant_prefix: str) -> tuple[str, str]:
    return new_tenant(tenant_prefix)


@pytest.fixture(scope="session")
def tenant(client: Client, main_tenant: tuple[str, str]) -> TenantHandle:
    return client.tenant(main_tenant[0], api_key=main_tenant[1])


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def aclient(server: BulkheadServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.endpoint) as c:
        yield c


@pytest.fixture(scope="session")
def atenant(aclient: AsyncClient, main_tenant: tuple[str, str]) -> AsyncTenantHandle:
    return aclient.tenant(main_tenant[0], api_key=main_tenant[1])


@pytest.fixture
def collection_name(tenant: TenantHandle) -> Iterator[str]:
    """A collection id no other test uses; the collection (if created) is dropped after."""
    name = f"c-{uuid.uuid4().hex[:12]}"
    yield name
    try:
        tenant.delete_collection(name)
    except NotFound:  # the test never created it
        pass
