"""Sessions through the Python SDK: a handle fixed to one session, built from the tenant's key
or from an end-user token bound to the session (minted with the `bulkhead token` commands, as
a tenant's backend would), which reaches that session and nothing else."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bulkhead import (
    AsyncClient,
    AsyncSessionHandle,
    Client,
    MemoryItem,
    SessionHandle,
    TenantHandle,
)
from bulkhead.errors import NotFound, PermissionDenied
from bulkhead.testing import BulkheadServer

from conftest import NewTenant, unique


def _bulkhead(server: BulkheadServer, *args: str) -> str:
    done = subprocess.run(
        [server.binary, *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def session_token(
    server: BulkheadServer, tenant_id: str, tenant_key: str, session: str, tmp: Path
) -> str:
    """A WRITE end-user token for alice, bound to `session` of the tenant: the tenant's
    TENANT_ADMIN key registers a signing key, and the token is signed with it."""
    private = tmp / "backend.pem"
    public = _bulkhead(server, "token", "keygen", "--out", str(private))
    _bulkhead(
        server,
        "key",
        "add-verification-key",
        "--endpoint",
        server.url,
        "--key",
        tenant_key,
        "--tenant",
        tenant_id,
        "--id",
        "backend",
        "--public-key",
        public,
    )
    return _bulkhead(
        server,
        "token",
        "mint",
        "--private-key-file",
        str(private),
        "--kid",
        f"tenants/{tenant_id}/verificationKeys/backend",
        "--sub",
        "alice",
        "--collection",
        "docs",
        "--session",
        session,
        "--role",
        "write",
    )


def test_a_session_handle_appends_recalls_and_ends(tenant: TenantHandle) -> None:
    tenant.create_session("chat", 3, idle_ttl_seconds=600, absolute_ttl_seconds=3600)
    chat = tenant.session("chat")
    assert isinstance(chat, SessionHandle) and chat.name.endswith("/sessions/chat")
    assert chat.append("How do refunds work?", id="t1", vector=[0.1, 0.2, 0.3]) == 0
    assert chat.append_many(
        [
            {"text": "30 days.", "kind": "turn", "vector": [0.3, 0.2, 0.1], "metadata": {"role": "assistant"}},
            {"text": "refund policy", "kind": "retrieved_chunks", "chunk_ids": ["doc1#3"]},
        ]
    ) == [1, 2]
    recalled = chat.recall([0.1, 0.2, 0.3], top_k=1)
    assert [r.item.id for r in recalled] == ["t1"] and recalled[0].score > 0.99
    history = chat.history()
    assert [i.text for i in history] == ["How do refunds work?", "30 days.", "refund policy"]
    assert isinstance(history[1], MemoryItem) and history[1].metadata == {"role": "assistant"}
    assert history[2].kind == "retrieved_chunks" and history[2].chunk_ids == ["doc1#3"]
    assert chat.info().items == 3
    chat.end()
    with pytest.raises(NotFound):
        chat.history()


def test_a_session_bound_token_reaches_its_session_only(
    server: BulkheadServer, client: Client, new_tenant: NewTenant, tmp_path: Path
) -> None:
    tenant_id, tenant_key = new_tenant()
    tenant = client.tenant(tenant_id, api_key=tenant_key)
    for s in ("mine", "theirs"):
        tenant.create_session(s, 0, idle_ttl_seconds=600, absolute_ttl_seconds=600)
        tenant.session(s).append(f"{s}-secret")
    token = session_token(server, tenant_id, tenant_key, "mine", tmp_path)
    mine = client.session(tenant.tenant_id, "mine", token)
    assert [i.text for i in mine.history()] == ["mine-secret"]
    mine.append("from alice")
    theirs = client.session(tenant.tenant_id, "theirs", token)
    with pytest.raises(PermissionDenied):
        theirs.history()
    with pytest.raises(PermissionDenied):
        theirs.append("planted")
    with pytest.raises(PermissionDenied):
        client.tenant(tenant.tenant_id, api_key=token).list_collections()
    assert [i.text for i in tenant.session("theirs").history()] == ["theirs-secret"]


async def test_the_async_session_handle_matches_the_sync_one(
    server: BulkheadServer, aclient: AsyncClient
) -> None:
    admin = aclient.admin(server.admin_token)
    tenant = await admin.create_tenant(unique("async-sessions"))
    _, secret = await admin.create_key(tenant.tenant_id, "write")
    handle = aclient.tenant(tenant.tenant_id, api_key=secret)
    await handle.create_session("chat", 2, idle_ttl_seconds=600, absolute_ttl_seconds=600)
    chat = handle.session("chat")
    assert isinstance(chat, AsyncSessionHandle)
    assert await chat.append("hello", id="h", vector=[1.0, 0.0]) == 0
    assert await chat.append_many([{"text": "world", "vector": [0.0, 1.0]}]) == [1]
    assert [r.item.text for r in await chat.recall([0.0, 1.0], top_k=1)] == ["world"]
    assert [i.text for i in await chat.history()] == ["hello", "world"]
    assert (await chat.info()).items == 2
    await chat.end()
    with pytest.raises(NotFound):
        await chat.history()
    sync_methods = {n for n in dir(SessionHandle) if not n.startswith("_")}
    async_methods = {n for n in dir(AsyncSessionHandle) if not n.startswith("_")}
    assert sync_methods == async_methods
