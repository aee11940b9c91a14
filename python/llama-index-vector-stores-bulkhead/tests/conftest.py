"""One real `bulkhead serve` per session; each test gets a fresh collection (and tests that
need it a fresh tenant)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio
from bulkhead import AsyncClient, Client
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
def new_tenant(server: BulkheadServer, client: Client) -> Callable[[str], tuple[str, str]]:
    """Creates a tenant with a fresh id and a WRITE key; returns (tenant id, key secret)."""
    admin = client.admin(admin_token=server.admin_token)

    def make(prefix: str) -> tuple[str, str]:
        tenant_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
        admin.create_tenant(tenant_id)
        _, secret = admin.create_key(tenant_id, "write", description="llama-index tests")
        return tenant_id, secret

    return make


@pytest.fixture(scope="session")
def main_tenant(new_tenant: Callable[[str], tuple[str, str]]) -> tuple[str, str]:
    return new_tenant("li")


@pytest.fixture(scope="session")
def tenant(client: Client, main_tenant: tuple[str, str]):  # type: ignore[no-untyped-def]
    return client.tenant(main_tenant[0], api_key=main_tenant[1])


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def aclient(server: BulkheadServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.endpoint) as c:
        yield c


@pytest.fixture(scope="session")
def atenant(aclient: AsyncClient, main_tenant: tuple[str, str]):  # type: ignore[no-untyped-def]
    return aclient.tenant(main_tenant[0], api_key=main_tenant[1])


@pytest.fixture
def collection_name(tenant) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A collection id no other test uses; the collection (if created) is dropped after."""
    name = f"c-{uuid.uuid4().hex[:12]}"
    yield name
    try:
        tenant.delete_collection(name)
    except NotFound:  # the test never created it
        pass
