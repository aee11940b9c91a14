"""The asyncio client on `grpc.aio`: the same handles as the sync client, method for method,
as coroutines (`audit_events` is an async iterator). Requests are built by the same code as
the sync client's (`_requests`), so the two can't drift apart in what they send."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc

from bulkhead import _arrow, _requests
from bulkhead._call import AsyncCaller, Policy, bearer
from bulkhead._channel import TlsConfig, aio_channel, resolve
from bulkhead._names import Names, key_name, tenant_name
from bulkhead._proto.bulkhead.v1 import admin_pb2, keys_pb2, records_pb2
from bulkhead._sessions import (
    AsyncSessionHandle,
    Session,
    create_session_request,
    session_from_pb,
)
from bulkhead._stubs import Stubs
from bulkhead.errors import InvalidArgument, from_rpc_error
from bulkhead.filters import FilterLike
from bulkhead.types import (
    ApiKey,
    AuditEvent,
    CacheEntry,
    Collection,
    Hit,
    Record,
    Tenant,
    Vector,
    api_key_from_pb,
    audit_event_from_pb,
    cache_entry_from_pb,
    chunked_records,
    collection_from_pb,
    hits_from_pb,
    id_chunks,
    record_from_pb,
    tenant_from_pb,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["AsyncAdminClient", "AsyncClient", "AsyncTenantHandle"]


class AsyncClient:
    """The asyncio twin of `Client` (same arguments). Close it with `await client.close()` or
    use `async with AsyncClient(...) as client:`."""

    def __init__(
        self,
        endpoint: str,
        timeout: float = 30.0,
        max_attempts: int = 4,
        tls: bool | TlsConfig | None = None,
        *,
        api_key: str | None = None,
        initial_backoff: float = 0.05,
        max_backoff: float = 2.0,
        stream_timeout: float = 3600.0,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._policy = Policy(timeout, max_attempts, initial_backoff, max_backoff, stream_timeout)
        self._target = resolve(endpoint, tls, options)
        self._api_key = api_key
        self._channel = aio_channel(self._target)
        self._stubs = Stubs(self._channel)

    @property
    def endpoint(self) -> str:
        return self._target.address

    def tenant(self, tenant_id: str, api_key: str | None = None) -> AsyncTenantHandle:
        """A handle fixed to `tenant_id` (see `Client.tenant`)."""
        secret = api_key if api_key is not None else self._api_key
        if secret is None:
            raise InvalidArgument("tenant() needs an api_key (or AsyncClient(api_key=...))")
        return AsyncTenantHandle(self._stubs, self._policy, Names(tenant_id), secret)

    def session(self, tenant_id: str, session_id: str, token: str) -> AsyncSessionHandle:
        """A handle fixed to one session of `tenant_id` (see `Client.session`)."""
        return AsyncSessionHandle(self._stubs, self._policy, tenant_id, session_id, token)

    def admin(self, admin_token: str) -> AsyncAdminClient:
        return AsyncAdminClient(self._stubs, self._policy, admin_token)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        tls = "plaintext" if self._target.tls is None else "tls"
        return f"AsyncClient({self._target.address!r}, {tls})"


class AsyncTenantHandle:
    """The asyncio twin of `TenantHandle`; see there for what each method does."""

    __slots__ = (
        "_call",
        "_encode_query",
        "_names",
        "_policy",
        "_query",
        "_secret",
        "_stubs",
    )

    def __init__(self, stubs: Stubs, policy: Policy, names: Names, secret: str) -> None:
        self._policy = policy
        self._secret = secret
        self._stubs = stubs
        self._names = names
        self._call = AsyncCaller(policy, bearer(secret, "api_key"))
        self._query = stubs.query
        self._encode_query = _requests.QueryEncoder(names)

    @property
    def tenant_id(self) -> str:
        return self._names.tenant

    def __repr__(self) -> str:
        return f"AsyncTenantHandle({self._names.tenant!r})"

    async def create_collection(
        self,
        collection: str,
        dimension: int,
        metric: str = "cosine",
        *,
        default_ttl_seconds: int | None = None,
        indexed_fields: Mapping[str, str] | None = None,
        hnsw: Mapping[str, Any] | None = None,
    ) -> Collection:
        request = _requests.create_collection(
            self._names, collection, dimension, metric, default_ttl_seconds, indexed_fields, hnsw
        )
        return collection_from_pb(
            await self._call(self._stubs.collections.CreateCollection, request)
        )

    async def get_collection(self, collection: str) -> Collection:
        request = _requests.get_collection(self._names, collection)
        return collection_from_pb(await self._call(self._stubs.collections.GetCollection, request))

    async def list_collections(self) -> list[Collection]:
        out: list[Collection] = []
        token = ""
        while True:
            page = await self._call(
                self._stubs.collections.ListCollections,
                _requests.list_collections(self._names, token),
            )
            out.extend(collection_from_pb(c) for c in page.collections)
            token = page.next_page_token
            if not token:
                return out

    async def delete_collection(self, collection: str) -> None:
        request = _requests.delete_collection(self._names, collection)
        await self._call(self._stubs.collections.DeleteCollection, request)

    async def upsert(
        self,
        collection: str,
        records: Iterable[Record],
        *,
        batch_records: int = 500,
        batch_bytes: int = 4 << 20,
    ) -> int:
        name = self._names.collection(collection)
        upserted = 0
        for chunk in chunked_records(records, batch_records, batch_bytes):
            request = records_pb2.UpsertRequest(collection=name, records=chunk)
            upserted += (await self._call(self._stubs.records.Upsert, request)).upserted
        return upserted

    async def get(self, collection: str, ids: Sequence[str]) -> list[Record]:
        name = self._names.collection(collection)
        out: list[Record] = []
        for chunk in id_chunks(ids, _requests.ID_BATCH):
            response = await self._call(
                self._stubs.records.Get, records_pb2.GetRequest(collection=name, ids=chunk)
            )
            out.extend(record_from_pb(r) for r in response.records)
        return out

    async def delete(self, collection: str, ids: Sequence[str]) -> int:
        name = self._names.collection(collection)
        deleted = 0
        for chunk in id_chunks(ids, _requests.ID_BATCH):
            request = records_pb2.DeleteRequest(collection=name, ids=chunk)
            deleted += (await self._call(self._stubs.records.Delete, request)).deleted
        return deleted

    async def query(
        self,
        collection: str,
        vector: Vector,
        top_k: int = 10,
        *,
        filter: FilterLike | None = None,
        include_text: bool = False,
        include_metadata: bool = False,
        include_vector: bool = False,
        ef: int = 0,
    ) -> list[Hit]:
        request = self._encode_query(
            collection, vector, top_k, filter, include_text, include_metadata, include_vector, ef
        )
        return hits_from_pb(
            await self._call(self._query, request), include_text, include_metadata, include_vector
        )

    async def import_arrow(
        self,
        collection: str,
        data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch],
        *,
        batch_rows: int = _arrow.IMPORT_BATCH_ROWS,
        timeout: float | None = None,
    ) -> int:
        stream = _arrow.ImportStream(self._names.collection(collection), data, batch_rows)
        try:
            response = await self._stubs.records.Import(
                iter(stream),
                timeout=timeout or self._policy.stream_timeout,
                metadata=self._call.metadata,
            )
        except grpc.RpcError as e:
            raise stream.failure(e) from e
        except asyncio.CancelledError:
            # grpc.aio cancels the call when the request iterator raises.
            if stream.error is not None:
                raise stream.error from None
            raise
        return int(response.imported)

    async def export_arrow(
        self, collection: str, batch_size: int = 0, *, timeout: float | None = None
    ) -> pa.RecordBatchReader:
        """The whole collection as a RecordBatchReader, once the stream has been received."""
        request = records_pb2.ExportRequest(
            collection=self._names.collection(collection), batch_size=batch_size
        )
        call = self._stubs.records.Export(
            request,
            timeout=timeout or self._policy.stream_timeout,
            metadata=self._call.metadata,
        )
        parts: list[bytes] = []
        try:
            async for response in call:
                parts.append(response.arrow_ipc)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        return _arrow.open_export_bytes(b"".join(parts))

    async def create_cache(
        self,
        cache_id: str,
        dimension: int,
        metric: str = "cosine",
        *,
        default_ttl_seconds: int | None = None,
        end_user_scope: str = "user",
        similarity_floor: float | None = None,
    ) -> Collection:
        request = _requests.create_cache(
            self._names,
            cache_id,
            dimension,
            metric,
            default_ttl_seconds,
            end_user_scope,
            similarity_floor,
        )
        return collection_from_pb(await self._call(self._stubs.cache.CreateCache, request))

    async def cache_store(
        self,
        cache: str,
        vector: Vector,
        prompt: str,
        response: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        ttl_seconds: int | None = None,
        scope: str | None = None,
        shared: bool = False,
        fingerprint: str | None = None,
    ) -> str:
        request = _requests.cache_store(
            self._names,
            cache,
            vector,
            prompt,
            response,
            metadata,
            ttl_seconds,
            scope,
            fingerprint,
            shared,
        )
        return str((await self._call(self._stubs.cache.Store, request)).id)

    async def cache_lookup(
        self,
        cache: str,
        vector: Vector,
        min_similarity: float,
        *,
        max_age_seconds: int | None = None,
        scope: str | None = None,
        shared: bool = False,
        fingerprint: str | None = None,
    ) -> CacheEntry | None:
        request = _requests.cache_lookup(
            self._names, cache, vector, min_similarity, max_age_seconds, scope, fingerprint, shared
        )
        response = await self._call(self._stubs.cache.Lookup, request)
        return cache_entry_from_pb(response.entry) if response.hit else None

    async def cache_invalidate(
        self, cache: str, ids: Sequence[str] | None = None, *, scope: str | None = None
    ) -> int:
        request = _requests.cache_invalidate(self._names, cache, ids, scope)
        return int((await self._call(self._stubs.cache.Invalidate, request)).invalidated)

    async def audit_events(
        self,
        *,
        start_time: datetime | None = None,
        page_size: int = 0,
        limit: int | None = None,
    ) -> AsyncIterator[AuditEvent]:
        """The tenant's audit trail as an async iterator: `async for e in t.audit_events():`."""
        token, left = "", limit
        while left is None or left > 0:
            page = await self._call(
                self._stubs.audit.ListAuditEvents,
                _requests.audit_page(self._names, start_time, page_size, token),
            )
            for event in page.events[:left]:
                yield audit_event_from_pb(event)
            if left is not None:
                left -= len(page.events)
            token = page.next_page_token
            if not token:
                return

    async def create_session(
        self,
        session_id: str,
        dimension: int,
        *,
        idle_ttl_seconds: int,
        absolute_ttl_seconds: int,
        metric: str = "cosine",
    ) -> Session:
        request = create_session_request(
            self._names.tenant,
            session_id,
            dimension,
            idle_ttl_seconds,
            absolute_ttl_seconds,
            metric,
        )
        return session_from_pb(await self._call(self._stubs.memory.CreateSession, request))

    def session(self, session_id: str) -> AsyncSessionHandle:
        return AsyncSessionHandle(
            self._stubs, self._policy, self._names.tenant, session_id, self._secret
        )

    async def create_key(
        self, role: str, *, ttl_seconds: int | None = None, description: str = ""
    ) -> tuple[ApiKey, str]:
        request = _requests.create_key(self._names.parent, role, ttl_seconds, description)
        response = await self._call(self._stubs.keys.CreateApiKey, request)
        return api_key_from_pb(response.key), response.secret

    async def list_keys(self) -> list[ApiKey]:
        request = keys_pb2.ListApiKeysRequest(parent=self._names.parent)
        response = await self._call(self._stubs.keys.ListApiKeys, request)
        return [api_key_from_pb(k) for k in response.keys]

    async def revoke_key(self, key_id: str) -> None:
        request = keys_pb2.RevokeApiKeyRequest(name=self._names.key(key_id))
        await self._call(self._stubs.keys.RevokeApiKey, request)


class AsyncAdminClient:
    """The asyncio twin of `AdminClient`."""

    __slots__ = ("_call", "_stubs")

    def __init__(self, stubs: Stubs, policy: Policy, admin_token: str) -> None:
        self._stubs = stubs
        self._call = AsyncCaller(policy, bearer(admin_token, "admin token"))

    def __repr__(self) -> str:
        return "AsyncAdminClient(..)"

    async def create_tenant(
        self,
        tenant_id: str,
        *,
        max_collections: int | None = None,
        max_records: int | None = None,
        max_stored_bytes: int | None = None,
        requests_per_second: float | None = None,
        burst: int | None = None,
        write_bytes_per_second: int | None = None,
        audit_retention_seconds: int | None = None,
        max_token_lifetime_seconds: int | None = None,
        requests_in_flight: int | None = None,
        open_streams: int | None = None,
        engine_threads: int | None = None,
        write_bytes_in_flight: int | None = None,
    ) -> Tenant:
        request = _requests.create_tenant(
            tenant_id,
            {
                "max_collections": max_collections,
                "max_records": max_records,
                "max_stored_bytes": max_stored_bytes,
                "requests_per_second": requests_per_second,
                "burst": burst,
                "write_bytes_per_second": write_bytes_per_second,
                "audit_retention_seconds": audit_retention_seconds,
                "max_token_lifetime_seconds": max_token_lifetime_seconds,
                "requests_in_flight": requests_in_flight,
                "open_streams": open_streams,
                "engine_threads": engine_threads,
                "write_bytes_in_flight": write_bytes_in_flight,
            },
        )
        return tenant_from_pb(await self._call(self._stubs.admin.CreateTenant, request))

    async def get_tenant(self, tenant_id: str) -> Tenant:
        request = admin_pb2.GetTenantRequest(name=tenant_name(tenant_id))
        return tenant_from_pb(await self._call(self._stubs.admin.GetTenant, request))

    async def list_tenants(self) -> list[Tenant]:
        out: list[Tenant] = []
        token = ""
        while True:
            request = admin_pb2.ListTenantsRequest(
                page_size=_requests.TENANT_PAGE, page_token=token
            )
            page = await self._call(self._stubs.admin.ListTenants, request)
            out.extend(tenant_from_pb(t) for t in page.tenants)
            token = page.next_page_token
            if not token:
                return out

    async def update_tenant(
        self,
        tenant_id: str,
        *,
        max_collections: int | None = None,
        max_records: int | None = None,
        max_stored_bytes: int | None = None,
        requests_per_second: float | None = None,
        burst: int | None = None,
        write_bytes_per_second: int | None = None,
        audit_retention_seconds: int | None = None,
        max_token_lifetime_seconds: int | None = None,
        requests_in_flight: int | None = None,
        open_streams: int | None = None,
        engine_threads: int | None = None,
        write_bytes_in_flight: int | None = None,
    ) -> Tenant:
        request = _requests.update_tenant(
            tenant_name(tenant_id),
            {
                "max_collections": max_collections,
                "max_records": max_records,
                "max_stored_bytes": max_stored_bytes,
                "requests_per_second": requests_per_second,
                "burst": burst,
                "write_bytes_per_second": write_bytes_per_second,
                "audit_retention_seconds": audit_retention_seconds,
                "max_token_lifetime_seconds": max_token_lifetime_seconds,
                "requests_in_flight": requests_in_flight,
                "open_streams": open_streams,
                "engine_threads": engine_threads,
                "write_bytes_in_flight": write_bytes_in_flight,
            },
        )
        return tenant_from_pb(await self._call(self._stubs.admin.UpdateTenant, request))

    async def delete_tenant(self, tenant_id: str) -> None:
        request = admin_pb2.DeleteTenantRequest(name=tenant_name(tenant_id))
        await self._call(self._stubs.admin.DeleteTenant, request)

    async def create_key(
        self,
        tenant_id: str,
        role: str,
        *,
        ttl_seconds: int | None = None,
        description: str = "",
    ) -> tuple[ApiKey, str]:
        request = _requests.create_key(tenant_name(tenant_id), role, ttl_seconds, description)
        response = await self._call(self._stubs.keys.CreateApiKey, request)
        return api_key_from_pb(response.key), response.secret

    async def list_keys(self, tenant_id: str) -> list[ApiKey]:
        request = keys_pb2.ListApiKeysRequest(parent=tenant_name(tenant_id))
        response = await self._call(self._stubs.keys.ListApiKeys, request)
        return [api_key_from_pb(k) for k in response.keys]

    async def revoke_key(self, tenant_id: str, key_id: str) -> None:
        request = keys_pb2.RevokeApiKeyRequest(name=key_name(tenant_id, key_id))
        await self._call(self._stubs.keys.RevokeApiKey, request)
