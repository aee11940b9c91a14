"""Python SDK of Bulkhead, the multi-tenant vector database. A handle is bound to one tenant
when it is made (`Client(...).tenant("acme", api_key=...)`) and none of its methods takes a
tenant, so application code cannot reach another tenant's data by passing the wrong one.

    from bulkhead import Client, Record

    with Client("127.0.0.1:7600") as client:
        acme = client.tenant("acme", api_key="bh_...")
        acme.create_collection("docs", dimension=384, indexed_fields={"section": "keyword"})
        acme.upsert("docs", [Record("doc-1", vector, text="...", metadata={"section": "net"})])
        hits = acme.query("docs", vector, top_k=5, filter={"section": "net"})
"""

from bulkhead import filters
from bulkhead._aio import AsyncAdminClient, AsyncClient, AsyncTenantHandle
from bulkhead._channel import TlsConfig
from bulkhead._client import AdminClient, Client, TenantHandle
from bulkhead._sessions import AsyncSessionHandle, MemoryItem, Recalled, Session, SessionHandle
from bulkhead.errors import BulkheadError
from bulkhead.types import ApiKey, AuditEvent, CacheEntry, Collection, Hit, Record, Tenant

__version__ = "0.1.0"

__all__ = [
    "AdminClient",
    "ApiKey",
    "AsyncAdminClient",
    "AsyncClient",
    "AsyncSessionHandle",
    "AsyncTenantHandle",
    "AuditEvent",
    "BulkheadError",
    "CacheEntry",
    "Client",
    "Collection",
    "Hit",
    "MemoryItem",
    "Recalled",
    "Record",
    "Session",
    "SessionHandle",
    "Tenant",
    "TenantHandle",
    "TlsConfig",
    "filters",
]
