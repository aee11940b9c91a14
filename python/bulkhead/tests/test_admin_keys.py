"""Round trips through AdminService (tenants) and KeyService (keys), with the admin handle and
with a tenant's own TENANT_ADMIN key."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from conftest import unique

from bulkhead import AdminClient, ApiKey, Client, Tenant, TenantHandle
from bulkhead.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated


def test_tenant_lifecycle(admin: AdminClient) -> None:
    tenant_id = unique("adm")
    created = admin.create_tenant(
        tenant_id,
        max_collections=10,
        max_records=1_000_000,
        requests_per_second=500,
        burst=1000,
        write_bytes_per_second=50_000_000,
        audit_retention_seconds=86400,
        max_token_lifetime_seconds=900,
    )
    assert isinstance(created, Tenant)
    assert (created.name, created.tenant_id) == (f"tenants/{tenant_id}", tenant_id)
    assert (created.max_collections, created.max_records, created.max_stored_bytes) == (
        10,
        1_000_000,
        0,
    )
    assert (created.requests_per_second, created.burst) == (500.0, 1000)
    assert created.write_bytes_per_second == 50_000_000
    assert created.audit_retention_seconds == 86400
    assert created.max_token_lifetime_seconds == 900
    assert created.state in ("cold", "warm", "hot")
    assert created.create_time is not None
    assert created.create_time > datetime.now(timezone.utc) - timedelta(minutes=5)

    with pytest.raises(AlreadyExists):
        admin.create_tenant(tenant_id)
    assert admin.get_tenant(tenant_id).max_collections == 10
    assert tenant_id in [t.tenant_id for t in admin.list_tenants()]

    # Only the settings given change; the others keep their values.
    updated = admin.update_tenant(tenant_id, requests_per_second=100, max_records=5)
    assert (updated.requests_per_second, updated.burst) == (100.0, 1000)
    assert (updated.max_records, updated.max_collections) == (5, 10)
    assert admin.get_tenant(tenant_id).requests_per_second == 100.0
    lifted = admin.update_tenant(tenant_id, max_token_lifetime_seconds=0)
    assert lifted.max_token_lifetime_seconds == 86400 and lifted.max_records == 5
    shared = admin.update_tenant(tenant_id, open_streams=3, engine_threads=1)
    assert (shared.open_streams, shared.engine_threads, shared.requests_in_flight) == (3, 1, 0)
    assert admin.update_tenant(tenant_id, open_streams=0).engine_threads == 1
    with pytest.raises(InvalidArgument, match="share.engine_threads"):
        admin.update_tenant(tenant_id, engine_threads=5000)
    roomy = admin.update_tenant(tenant_id, write_bytes_in_flight=32 << 20)
    assert (roomy.write_bytes_in_flight, roomy.engine_threads) == (32 << 20, 1)
    assert admin.update_tenant(tenant_id, write_bytes_in_flight=0).write_bytes_in_flight == 0
    with pytest.raises(InvalidArgument, match="nothing to update"):
        admin.update_tenant(tenant_id)

    admin.delete_tenant(tenant_id)
    with pytest.raises(NotFound):
        admin.get_tenant(tenant_id)
    assert tenant_id not in [t.tenant_id for t in admin.list_tenants()]


def test_list_tenants_follows_pages(admin: AdminClient) -> None:
    ids = [admin.create_tenant(unique("page")).tenant_id for _ in range(3)]
    listed = [t.tenant_id for t in admin.list_tenants()]
    assert set(ids) <= set(listed)
    assert len(listed) == len(set(listed))


def test_keys_through_the_admin_handle(admin: AdminClient, client: Client) -> None:
    tenant_id = admin.create_tenant(unique("keys")).tenant_id
    key, secret = admin.create_key(tenant_id, "WRITE", ttl_seconds=86400, description="rag backend")
    assert isinstance(key, ApiKey)
    assert key.name == f"tenants/{tenant_id}/keys/{key.key_id}" and key.tenant_id == tenant_id
    assert (key.role, key.description, key.revoked) == ("write", "rag backend", False)
    assert key.expire_time is not None and key.create_time is not None
    assert key.expire_time - key.create_time == timedelta(days=1)
    assert secret.startswith("bh_")

    handle = client.tenant(tenant_id, api_key=secret)
    handle.create_collection("docs", 3)
    listed = admin.list_keys(tenant_id)
    assert [k.key_id for k in listed] == [key.key_id]

    admin.revoke_key(tenant_id, key.key_id)
    assert admin.list_keys(tenant_id)[0].revoked
    with pytest.raises(Unauthenticated):
        handle.list_collections()
    with pytest.raises(NotFound):
        admin.revoke_key(tenant_id, "knothere")


def test_keys_through_a_tenant_admin_key(tenant: TenantHandle, client: Client) -> None:
    key, secret = tenant.create_key("read", description="reader")
    assert key.role == "read" and key.expire_time is None
    reader = client.tenant(tenant.tenant_id, api_key=secret)
    assert reader.list_collections() == []
    ids = {k.key_id for k in tenant.list_keys()}
    assert key.key_id in ids and len(ids) == 2  # the fixture's key and this one
    tenant.revoke_key(key.key_id)
    with pytest.raises(Unauthenticated):
        reader.list_collections()


@pytest.mark.parametrize("bad", ["", "Acme", "a/b", "../x", "a" * 64, "ａcme", "acme corp", "-a"])
def test_malformed_ids_are_refused_before_sending(
    client: Client, admin: AdminClient, bad: str
) -> None:
    with pytest.raises(InvalidArgument, match="invalid tenant id"):
        client.tenant(bad, api_key="bh_x")
    with pytest.raises(InvalidArgument):
        admin.create_tenant(bad)
    handle = client.tenant("fine", api_key="bh_x")
    with pytest.raises(InvalidArgument, match="invalid collection id"):
        handle.get_collection(bad)
    with pytest.raises(InvalidArgument, match="invalid cache id"):
        handle.cache_invalidate(bad, scope="s")


def test_bad_settings_are_refused_before_sending(tenant: TenantHandle, admin: AdminClient) -> None:
    with pytest.raises(InvalidArgument, match="role"):
        tenant.create_key("owner")
    with pytest.raises(InvalidArgument, match="metric"):
        tenant.create_collection("docs", 3, "manhattan")
    with pytest.raises(InvalidArgument, match="field type"):
        tenant.create_collection("docs", 3, indexed_fields={"f": "date"})
    with pytest.raises(InvalidArgument, match="hnsw"):
        tenant.create_collection("docs", 3, hnsw={"M": 4})
    with pytest.raises(InvalidArgument, match="ttl"):
        tenant.create_key("read", ttl_seconds=0)
    with pytest.raises(InvalidArgument, match="at least 0"):
        admin.update_tenant(tenant.tenant_id, max_records=-1)
    with pytest.raises(InvalidArgument, match="api_key"):
        Client("127.0.0.1:1").tenant("acme")
    with pytest.raises(InvalidArgument, match="printable"):
        Client("127.0.0.1:1").tenant("acme", api_key="bad\nsecret")
