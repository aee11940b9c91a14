"""Round trips through SemanticCacheService and AuditService."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from bulkhead import AuditEvent, CacheEntry, Client, TenantHandle
from bulkhead.errors import InvalidArgument, NotFound


def test_semantic_cache(tenant: TenantHandle) -> None:
    cache = tenant.create_cache("answers", 3, default_ttl_seconds=86400)
    assert cache.collection_id == "answers" and cache.default_ttl_seconds == 86400
    assert cache.kind == "semantic_cache"
    kinds = {c.collection_id: c.kind for c in tenant.list_collections()}
    assert kinds["answers"] == "semantic_cache"

    prompt = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    entry_id = tenant.cache_store(
        "answers",
        prompt,
        "What is our refund policy?",
        "30 days from delivery.",
        metadata={"model": "m1"},
        ttl_seconds=3600,
        scope="user-42",
    )
    unscoped = tenant.cache_store("answers", [0.1, 0.2, 0.3], "Q", "shared answer", shared=True)
    assert entry_id and unscoped and entry_id != unscoped

    hit = tenant.cache_lookup(
        "answers", [0.1, 0.2, 0.31], 0.92, max_age_seconds=600, scope="user-42"
    )
    assert isinstance(hit, CacheEntry)
    assert (hit.id, hit.prompt, hit.response) == (
        entry_id,
        "What is our refund policy?",
        "30 days from delivery.",
    )
    assert hit.metadata == {"model": "m1"} and 0.92 <= hit.similarity <= 1.0001
    assert hit.age_seconds >= 0
    # No fallback between scopes, nor from a scope to the shared entries.
    assert tenant.cache_lookup("answers", [0.1, 0.2, 0.31], 0.92, scope="user-7") is None
    shared = tenant.cache_lookup("answers", [0.1, 0.2, 0.31], 0.92, shared=True)
    assert shared is not None and shared.id == unscoped
    # A service key has to say which: a scope or the shared entries, not neither or both.
    with pytest.raises(InvalidArgument, match="shared"):
        tenant.cache_lookup("answers", [0.1, 0.2, 0.31], 0.92)
    with pytest.raises(InvalidArgument):
        tenant.cache_store("answers", [0.1, 0.2, 0.3], "Q", "unscoped answer")
    with pytest.raises(InvalidArgument):
        tenant.cache_lookup("answers", [0.1, 0.2, 0.31], 0.92, scope="user-42", shared=True)
    assert tenant.cache_lookup("answers", [-0.3, 0.2, -0.1], 0.92, scope="user-42") is None

    assert tenant.cache_invalidate("answers", scope="user-42") == 1
    assert tenant.cache_lookup("answers", [0.1, 0.2, 0.31], 0.92, scope="user-42") is None
    assert tenant.cache_invalidate("answers", [unscoped]) == 1
    assert tenant.cache_lookup("answers", [0.1, 0.2, 0.31], 0.92, shared=True) is None
    with pytest.raises(InvalidArgument):
        tenant.cache_invalidate("answers")  # neither ids nor a scope
    with pytest.raises(InvalidArgument):
        tenant.cache_store("answers", [0.1, 0.2, 0.3], "p", "r", metadata={"_scope": "x"})
    with pytest.raises(InvalidArgument):
        tenant.create_cache("l2cache", 3, "l2")
    with pytest.raises(NotFound):
        tenant.cache_lookup("missing", [0.1, 0.2, 0.3], 0.5)


def test_audit_trail(tenant: TenantHandle, client: Client) -> None:
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    tenant.create_collection("docs", 3)
    tenant.list_collections()
    events = list(tenant.audit_events())
    assert all(isinstance(e, AuditEvent) for e in events)
    methods = [e.method for e in events]
    assert "CollectionService/CreateCollection" in methods
    assert "CollectionService/ListCollections" in methods
    create = events[methods.index("CollectionService/CreateCollection")]
    assert create.resource.startswith(f"tenants/{tenant.tenant_id}")
    assert create.outcome == "OK" and create.time is not None and create.time >= before
    sequences = [e.sequence for e in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)

    # Paging through small pages yields the same trail (each page request is itself audited:
    # the iteration still reaches the end), and `limit` stops it early.
    paged = [e.sequence for e in tenant.audit_events(page_size=1)]
    assert paged[: len(sequences)] == sequences
    assert [e.sequence for e in tenant.audit_events(page_size=2, limit=3)] == sequences[:3]

    # start_time skips older events.
    later = list(tenant.audit_events(start_time=datetime.now(timezone.utc) + timedelta(hours=1)))
    assert later == []
    since = list(tenant.audit_events(start_time=create.time))
    assert since and since[0].sequence >= create.sequence

    # A refused call is audited too.
    with pytest.raises(NotFound):
        tenant.get_collection("missing")
    outcomes = {(e.method, e.outcome) for e in tenant.audit_events()}
    assert ("CollectionService/GetCollection", "NOT_FOUND") in outcomes


def test_fingerprints_and_the_similarity_floor(tenant: TenantHandle) -> None:
    cache = tenant.create_cache("strict", 2, similarity_floor=0.99, end_user_scope="session")
    assert cache.kind == "semantic_cache"
    tenant.cache_store("strict", [1.0, 0.0], "q", "from gpt-x", fingerprint="gpt-x/v1", shared=True)

    def lookup(vector: list[float], fingerprint: str | None = None) -> CacheEntry | None:
        return tenant.cache_lookup("strict", vector, -1.0, fingerprint=fingerprint, shared=True)

    assert lookup([1.0, 0.0], "gpt-x/v1") is not None
    assert lookup([1.0, 0.0], "gpt-y/v1") is None
    assert lookup([1.0, 0.0]) is None
    # The floor holds whatever the lookup asks for.
    assert lookup([0.6, 0.8], "gpt-x/v1") is None
    with pytest.raises(InvalidArgument):
        tenant.create_cache("bad", 2, end_user_scope="team")
