"""One real `bulkhead serve` per test session, from the SDK's own pytest fixtures
(`bulkhead.pytest_fixtures`: $BULKHEAD_BIN, which scripts/test-python.sh sets to the checkout's
build); every test that needs isolation makes its own tenant."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from bulkhead import AdminClient, Client, TenantHandle
from bulkhead.pytest_fixtures import aclient, client, server
from bulkhead.testing import BulkheadServer

# Imported fixtures, used by name; listed so the imports are not "unused".
__all__ = ["aclient", "client", "server"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


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
