"""Tenant isolation through the Python handle: a key of tenant A, used through a handle for
tenant B, is refused by every data method, and no method of a handle can name a tenant."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
from conftest import NewTenant

from bulkhead import AsyncTenantHandle, Client, Record, TenantHandle
from bulkhead.errors import PermissionDenied


def calls(handle: TenantHandle) -> dict[str, Callable[[], Any]]:
    """One call of every public method of the handle, each on collection/cache names that
    exist in tenant B."""
    table = pa.table(
        {"id": ["x"], "vector": pa.array([[1.0, 0.0]], type=pa.list_(pa.float32(), 2))}
    )
    return {
        "create_collection": lambda: handle.create_collection("new", 2),
        "get_collection": lambda: handle.get_collection("docs"),
        "list_collections": lambda: handle.list_collections(),
        "delete_collection": lambda: handle.delete_collection("docs"),
        "upsert": lambda: handle.upsert("docs", [Record("x", [1.0, 0.0])]),
        "get": lambda: handle.get("docs", ["b-1"]),
        "delete": lambda: handle.delete("docs", ["b-1"]),
        "query": lambda: handle.query("docs", [1.0, 0.0], 5),
        "import_arrow": lambda: handle.import_arrow("docs", table),
        "export_arrow": lambda: handle.export_arrow("docs").read_all(),
        "create_cache": lambda: handle.create_cache("cache2", 2),
        "cache_store": lambda: handle.cache_store("cache", [1.0, 0.0], "p", "r", shared=True),
        "cache_lookup": lambda: handle.cache_lookup("cache", [1.0, 0.0], 0.5, shared=True),
        "cache_invalidate": lambda: handle.cache_invalidate("cache", scope="s"),
        "audit_events": lambda: list(handle.audit_events()),
        "create_key": lambda: handle.create_key("read"),
        "list_keys": lambda: handle.list_keys(),
        "revoke_key": lambda: handle.revoke_key("kdeadbeef"),
        "create_session": lambda: handle.create_session(
            "s2", 2, idle_ttl_seconds=60, absolute_ttl_seconds=60
        ),
        "session": lambda: handle.session("chat").history(),
    }


def public_methods(cls: type) -> list[str]:
    return [n for n, _ in inspect.getmembers(cls, callable) if not n.startswith("_")]


def test_a_key_of_a_cannot_reach_b_through_any_method(
    client: Client, new_tenant: NewTenant
) -> None:
    a_id, a_key = new_tenant()  # TENANT_ADMIN: its role allows every method
    b_id, b_key = new_tenant()
    b = client.tenant(b_id, api_key=b_key)
    b.create_collection("docs", 2)
    b.upsert("docs", [Record("b-1", [1.0, 0.0], text="secret of b")])
    b.create_cache("cache", 2)
    b.cache_store("cache", [1.0, 0.0], "p", "b's answer", shared=True)
    b.create_session("chat", 2, idle_ttl_seconds=600, absolute_ttl_seconds=600)
    b.session("chat").append("b's memory")

    forged = client.tenant(b_id, api_key=a_key)
    attempts = calls(forged)
    assert sorted(attempts) == sorted(public_methods(TenantHandle)), "every method is tried"
    for name, attempt in attempts.items():
        try:
            attempt()
        except PermissionDenied as e:
            assert "another tenant" in e.message, (name, e.message)
        else:
            pytest.fail(f"{name} reached tenant B with a key of tenant A")

    # B is untouched, and A's own trail records the attempts.
    assert sorted(c.collection_id for c in b.list_collections()) == ["cache", "docs"]
    assert b.get("docs", ["b-1"])[0].text == "secret of b"
    assert [r.id for r in b.get("docs", ["x"])] == []
    assert [i.text for i in b.session("chat").history()] == ["b's memory"]
    a = client.tenant(a_id, api_key=a_key)
    denied = [e for e in a.audit_events() if e.outcome == "PERMISSION_DENIED"]
    assert len(denied) >= len(attempts) - 1
    assert all(e.resource.startswith(f"tenants/{b_id}") for e in denied)


@pytest.mark.parametrize("cls", [TenantHandle, AsyncTenantHandle])
def test_no_handle_method_can_name_a_tenant(cls: type) -> None:
    methods = public_methods(cls)
    assert len(methods) >= 18
    for name in methods:
        parameters = inspect.signature(getattr(cls, name)).parameters
        assert not [p for p in parameters if "tenant" in p.lower()], f"{cls.__name__}.{name}"
    # The tenant is fixed when the handle is made and can only be read.
    prop = inspect.getattr_static(cls, "tenant_id")
    assert isinstance(prop, property) and prop.fset is None


def test_the_handle_has_no_writable_state(client: Client) -> None:
    handle = client.tenant("acme", api_key="bh_x")
    with pytest.raises(AttributeError):
        handle.tenant_id = "globex"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        handle.anything = 1  # type: ignore[attr-defined]
