"""The asyncio client: the same round trips as the sync tests, through grpc.aio."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import numpy as np
import pyarrow as pa
import pytest
from conftest import unique

from bulkhead import AsyncClient, AsyncTenantHandle, Record, filters
from bulkhead.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)


async def fresh_tenant(aclient: AsyncClient, admin_token: str) -> tuple[AsyncTenantHandle, str]:
    """A handle on a new tenant with a TENANT_ADMIN key, and that key's secret."""
    admin = aclient.admin(admin_token)
    tenant = await admin.create_tenant(unique("async"))
    _, secret = await admin.create_key(tenant.tenant_id, "tenant_admin")
    return aclient.tenant(tenant.tenant_id, api_key=secret), secret


async def test_admin_and_keys(aclient: AsyncClient, server) -> None:  # type: ignore[no-untyped-def]
    admin = aclient.admin(server.admin_token)
    tenant_id = unique("async")
    created = await admin.create_tenant(tenant_id, max_collections=3)
    assert created.tenant_id == tenant_id and created.max_collections == 3
    with pytest.raises(AlreadyExists):
        await admin.create_tenant(tenant_id)
    assert (await admin.get_tenant(tenant_id)).max_collections == 3
    assert tenant_id in [t.tenant_id for t in await admin.list_tenants()]
    updated = await admin.update_tenant(tenant_id, max_collections=4, burst=50)
    assert (updated.max_collections, updated.burst) == (4, 50)

    key, secret = await admin.create_key(tenant_id, "tenant_admin", description="async")
    assert [k.key_id for k in await admin.list_keys(tenant_id)] == [key.key_id]
    handle = aclient.tenant(tenant_id, api_key=secret)
    reader_key, reader_secret = await handle.create_key("read", ttl_seconds=60)
    assert reader_key.role == "read" and reader_key.expire_time is not None
    assert len(await handle.list_keys()) == 2
    reader = aclient.tenant(tenant_id, api_key=reader_secret)
    assert await reader.list_collections() == []
    await handle.revoke_key(reader_key.key_id)
    with pytest.raises(Unauthenticated):
        await reader.list_collections()
    await admin.revoke_key(tenant_id, key.key_id)
    with pytest.raises(Unauthenticated):
        await handle.list_collections()

    await admin.delete_tenant(tenant_id)
    with pytest.raises(NotFound):
        await admin.get_tenant(tenant_id)


async def test_collections_records_and_queries(aclient: AsyncClient, server) -> None:  # type: ignore[no-untyped-def]
    t, _ = await fresh_tenant(aclient, server.admin_token)
    created = await t.create_collection("docs", 3, indexed_fields={"lang": "keyword"})
    assert created.collection_id == "docs" and created.indexed_fields == {"lang": "keyword"}
    await t.create_collection("other", 3, "l2", default_ttl_seconds=60)
    assert (await t.get_collection("other")).metric == "l2"
    assert sorted(c.collection_id for c in await t.list_collections()) == ["docs", "other"]
    await t.delete_collection("other")
    with pytest.raises(NotFound):
        await t.get_collection("other")

    records = [
        Record("a", np.array([1.0, 0.0, 0.0], dtype=np.float32), text="A", metadata={"lang": "en"}),
        Record("b", [0.0, 1.0, 0.0], text="B", metadata={"lang": "de", "n": 2}),
        Record("c", np.array([0.0, 0.0, 1.0]), metadata={"lang": "en"}),
    ]
    assert await t.upsert("docs", records, batch_records=2) == 3
    got = await t.get("docs", ["b", "zz", "a"])
    assert [(r.id, r.text) for r in got] == [("b", "B"), ("a", "A")]
    assert got[0].metadata == {"lang": "de", "n": 2}
    hits = await t.query("docs", np.array([0.9, 0.2, 0.0]), 2, include_text=True)
    assert [(h.id, h.text) for h in hits] == [("a", "A"), ("b", "B")]
    hits = await t.query("docs", [0.9, 0.2, 0.0], 5, filter=filters.eq("lang", "en"))
    assert [h.id for h in hits] == ["a", "c"]
    hits = await t.query(
        "docs", [0.9, 0.2, 0.0], 5, filter={"lang": {"$ne": "en"}}, include_vector=True
    )
    assert [(h.id, h.vector) for h in hits] == [("b", [0.0, 1.0, 0.0])]
    with pytest.raises(InvalidArgument):
        await t.query("docs", [1.0, 0.0], 5)

    # Many concurrent calls on one handle.
    answers = await asyncio.gather(*(t.query("docs", [1.0, 0.0, 0.0], 1) for _ in range(50)))
    assert all(a[0].id == "a" for a in answers)

    assert await t.delete("docs", ["a", "zz"]) == 1
    assert [r.id for r in await t.get("docs", ["a", "b", "c"])] == ["b", "c"]


async def test_arrow_import_and_export(aclient: AsyncClient, server) -> None:  # type: ignore[no-untyped-def]
    t, _ = await fresh_tenant(aclient, server.admin_token)
    await t.create_collection("docs", 2)
    n = 1500
    table = pa.table(
        {
            "id": [f"r{i:04d}" for i in range(n)],
            "vector": pa.array([[1.0, float(i)] for i in range(n)], type=pa.list_(pa.float32(), 2)),
            "metadata": [json.dumps({"i": i}) for i in range(n)],
        }
    )
    assert await t.import_arrow("docs", table) == n
    reader = await t.export_arrow("docs", batch_size=500)
    exported = reader.read_all()
    assert exported.num_rows == n
    assert exported.column("id").to_pylist() == table.column("id").to_pylist()
    assert (await t.get("docs", ["r0042"]))[0].metadata == {"i": 42}
    with pytest.raises(NotFound):
        await t.export_arrow("missing")
    with pytest.raises(InvalidArgument, match="differ in schema"):
        await t.import_arrow(
            "docs", [table.to_batches()[0], table.drop_columns(["metadata"]).to_batches()[0]]
        )


async def test_cache_and_audit(aclient: AsyncClient, server) -> None:  # type: ignore[no-untyped-def]
    t, _ = await fresh_tenant(aclient, server.admin_token)
    await t.create_cache("answers", 3)
    entry = await t.cache_store("answers", [0.1, 0.2, 0.3], "q", "a", scope="u1", metadata={"m": 1})
    hit = await t.cache_lookup("answers", np.array([0.1, 0.2, 0.31]), 0.9, scope="u1")
    assert hit is not None and (hit.id, hit.response, hit.metadata) == (entry, "a", {"m": 1})
    assert await t.cache_lookup("answers", [0.1, 0.2, 0.31], 0.9, shared=True) is None
    assert await t.cache_invalidate("answers", [entry]) == 1
    assert (
        await t.cache_lookup("answers", [0.1, 0.2, 0.31], 0.9, scope="u1", max_age_seconds=60)
        is None
    )

    events = [e async for e in t.audit_events()]
    methods = {e.method for e in events}
    assert {
        "SemanticCacheService/CreateCache",
        "SemanticCacheService/Store",
        "SemanticCacheService/Lookup",
        "SemanticCacheService/Invalidate",
    } <= methods
    paged = [e.sequence async for e in t.audit_events(page_size=2)]
    assert paged[: len(events)] == [e.sequence for e in events]


async def test_cross_tenant_is_refused(aclient: AsyncClient, server) -> None:  # type: ignore[no-untyped-def]
    _, a_key = await fresh_tenant(aclient, server.admin_token)
    b, _ = await fresh_tenant(aclient, server.admin_token)
    await b.create_collection("docs", 2)
    forged = aclient.tenant(b.tenant_id, api_key=a_key)
    attempts: dict[str, Callable[[], Awaitable[object]]] = {
        "list_collections": lambda: forged.list_collections(),
        "get_collection": lambda: forged.get_collection("docs"),
        "upsert": lambda: forged.upsert("docs", [Record("x", [1.0, 0.0])]),
        "query": lambda: forged.query("docs", [1.0, 0.0], 1),
        "get": lambda: forged.get("docs", ["x"]),
        "delete": lambda: forged.delete("docs", ["x"]),
        "export_arrow": lambda: forged.export_arrow("docs"),
        "cache_lookup": lambda: forged.cache_lookup("docs", [1.0, 0.0], 0.5),
        "list_keys": lambda: forged.list_keys(),
    }
    for attempt in attempts.values():
        with pytest.raises(PermissionDenied):
            await attempt()
    with pytest.raises(PermissionDenied):
        [e async for e in forged.audit_events()]
