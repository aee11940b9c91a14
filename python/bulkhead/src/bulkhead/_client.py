"""The synchronous client on `grpc`. A `TenantHandle` is fixed to one tenant when it is made:
every resource name is built inside it from that tenant and a checked id, and no method takes
a tenant, so code holding a handle cannot address another tenant even by mistake. Handles are
immutable and safe to share between threads; they share their client's channel and stubs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc

from bulkhead import _arrow, _requests
from bulkhead._call import Caller, Policy, bearer
from bulkhead._channel import TlsConfig, resolve, sync_channel
from bulkhead._names import Names, key_name, tenant_name
from bulkhead._proto.bulkhead.v1 import admin_pb2, keys_pb2, records_pb2
from bulkhead._sessions import Session, SessionHandle, create_session_request, session_from_pb
from bulkhead._stubs import Stubs
from bulkhead.errors import InvalidArgument
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

__all__ = ["AdminClient", "Client", "TenantHandle"]


class Client:
    """A connection to one Bulkhead server, shared by the tenant and admin handles made from it.

    `endpoint` is "host:port", "http://host:port" or "https://host:port" (https implies TLS).
    `tls`: None/False for plaintext, True for TLS trusting the system roots, or a TlsConfig
    (private CA, client certificate). `timeout` is the deadline of each attempt of each call
    (seconds), `max_attempts` the attempts per call (only UNAVAILABLE is retried);
    `stream_timeout` is the deadline of a whole Arrow import or export (an hour, like the
    server's own bound: a big file, or one paced by the tenant's write limit, takes longer than
    one call). `api_key` is the default credential of `tenant()`. The channel connects lazily."""

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
        self._channel = sync_channel(self._target)
        self._stubs = Stubs(self._channel)

    @property
    def endpoint(self) -> str:
        return self._target.address

    def tenant(self, tenant_id: str, api_key: str | None = None) -> TenantHandle:
        """A handle fixed to `tenant_id`, authenticated with `api_key` (a key or token of that
        tenant, or the admin token); without one, the client's `api_key`."""
        secret = api_key if api_key is not None else self._api_key
        if secret is None:
            raise InvalidArgument("tenant() needs an api_key (or Client(api_key=...))")
        return TenantHandle(self._stubs, self._policy, Names(tenant_id), secret)

    def session(self, tenant_id: str, session_id: str, token: str) -> SessionHandle:
        """A handle fixed to one session of `tenant_id`, authenticated with `token`: typically an
        end-user token bound to that session, which reaches nothing else."""
        return SessionHandle(self._stubs, self._policy, tenant_id, session_id, token)

    def admin(self, admin_token: str) -> AdminClient:
        """The tenant-management handle; needs the server's admin token."""
        return AdminClient(self._stubs, self._policy, admin_token)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        tls = "plaintext" if self._target.tls is None else "tls"
        return f"Client({self._target.address!r}, {tls})"


class TenantHandle:
    """Everything one tenant's application does: collections, records, queries, the semantic
    cache, Arrow import/export, its audit trail and (with a TENANT_ADMIN key) its keys."""

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
        self._stubs = stubs
        self._names = names
        self._policy = policy
        self._secret = secret
        self._call = Caller(policy, bearer(secret, "api_key"))
        self._query = stubs.query
        self._encode_query = _requests.QueryEncoder(names)

    @property
    def tenant_id(self) -> str:
        return self._names.tenant

    def __repr__(self) -> str:
        return f"TenantHandle({self._names.tenant!r})"

    # --- collections --------------------------------------------------------------------------

    def create_collection(
        self,
        collection: str,
        dimension: int,
        metric: str = "cosine",
        *,
        default_ttl_seconds: int | None = None,
        indexed_fields: Mapping[str, str] | None = None,
        hnsw: Mapping[str, Any] | None = None,
    ) -> Collection:
        """Creates a collection of `dimension`-sized vectors compared by `metric` (`cosine`,
        `dot`, `l2`). `indexed_fields` maps metadata fields to filter on to `keyword`,
        `integer`, `float` or `bool`; `hnsw` takes m, ef_construction, ef_search,
        flat_threshold, build_threads, quantization (int8/none) and segments (on/off)."""
        request = _requests.create_collection(
            self._names, collection, dimension, metric, default_ttl_seconds, indexed_fields, hnsw
        )
        return collection_from_pb(self._call(self._stubs.collections.CreateCollection, request))

    def get_collection(self, collection: str) -> Collection:
        request = _requests.get_collection(self._names, collection)
        return collection_from_pb(self._call(self._stubs.collections.GetCollection, request))

    def list_collections(self) -> list[Collection]:
        """Every collection (caches included) of the tenant, following pages to the end."""
        out: list[Collection] = []
        token = ""
        while True:
            page = self._call(
                self._stubs.collections.ListCollections,
                _requests.list_collections(self._names, token),
            )
            out.extend(collection_from_pb(c) for c in page.collections)
            token = page.next_page_token
            if not token:
                return out

    def delete_collection(self, collection: str) -> None:
        request = _requests.delete_collection(self._names, collection)
        self._call(self._stubs.collections.DeleteCollection, request)

    # --- records ------------------------------------------------------------------------------

    def upsert(
        self,
        collection: str,
        records: Iterable[Record],
        *,
        batch_records: int = 500,
        batch_bytes: int = 4 << 20,
    ) -> int:
        """Inserts or replaces `records`, in requests of at most `batch_records` records and
        about `batch_bytes`. Each request is atomic; on error the earlier ones stay applied,
        so retrying the whole call is safe (upsert by id is idempotent). Returns the count."""
        name = self._names.collection(collection)
        upserted = 0
        for chunk in chunked_records(records, batch_records, batch_bytes):
            request = records_pb2.UpsertRequest(collection=name, records=chunk)
            upserted += self._call(self._stubs.records.Upsert, request).upserted
        return upserted

    def get(self, collection: str, ids: Sequence[str]) -> list[Record]:
        """The live records among `ids`, in request order; missing or expired ids are absent."""
        name = self._names.collection(collection)
        out: list[Record] = []
        for chunk in id_chunks(ids, _requests.ID_BATCH):
            response = self._call(
                self._stubs.records.Get, records_pb2.GetRequest(collection=name, ids=chunk)
            )
            out.extend(record_from_pb(r) for r in response.records)
        return out

    def delete(self, collection: str, ids: Sequence[str]) -> int:
        """Deletes `ids`; returns how many existed."""
        name = self._names.collection(collection)
        deleted = 0
        for chunk in id_chunks(ids, _requests.ID_BATCH):
            request = records_pb2.DeleteRequest(collection=name, ids=chunk)
            deleted += self._call(self._stubs.records.Delete, request).deleted
        return deleted

    def query(
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
        """The `top_k` nearest live records to `vector`, best first. `filter` (a Filter or a
        `filters.from_dict` dict) applies to the collection's indexed fields; `ef` widens the
        HNSW search (0: the collection's ef_search)."""
        request = self._encode_query(
            collection, vector, top_k, filter, include_text, include_metadata, include_vector, ef
        )
        return hits_from_pb(
            self._call(self._query, request), include_text, include_metadata, include_vector
        )

    def import_arrow(
        self,
        collection: str,
        data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch],
        *,
        batch_rows: int = _arrow.IMPORT_BATCH_ROWS,
        timeout: float | None = None,
    ) -> int:
        """Loads Arrow data (columns id, vector, and optionally text, metadata as JSON strings,
        ttl_seconds) in record batches of at most `batch_rows`, each applied atomically; on
        error the batches before the bad one stay applied and the error says how many. Not
        retried (a stream can't be replayed). Returns the records imported."""
        stream = _arrow.ImportStream(self._names.collection(collection), data, batch_rows)
        try:
            response = self._stubs.records.Import(
                iter(stream),
                timeout=timeout or self._policy.stream_timeout,
                metadata=self._call.metadata,
            )
        except grpc.RpcError as e:
            raise stream.failure(e) from e
        return int(response.imported)

    def export_arrow(
        self, collection: str, batch_size: int = 0, *, timeout: float | None = None
    ) -> pa.RecordBatchReader:
        """The whole collection as a RecordBatchReader, decoded as the server streams it
        (`batch_size` records per batch; 0: the server's default). Not retried."""
        request = records_pb2.ExportRequest(
            collection=self._names.collection(collection), batch_size=batch_size
        )
        responses = self._stubs.records.Export(
            request,
            timeout=timeout or self._policy.stream_timeout,
            metadata=self._call.metadata,
        )
        return _arrow.open_export(responses)

    # --- semantic cache -----------------------------------------------------------------------

    def create_cache(
        self,
        cache_id: str,
        dimension: int,
        metric: str = "cosine",
        *,
        default_ttl_seconds: int | None = None,
        end_user_scope: str = "user",
        similarity_floor: float | None = None,
    ) -> Collection:
        """Creates a semantic cache (a collection with the fields lookups filter on; list and
        delete it as a collection). `metric` is `cosine` or `dot`."""
        request = _requests.create_cache(
            self._names,
            cache_id,
            dimension,
            metric,
            default_ttl_seconds,
            end_user_scope,
            similarity_floor,
        )
        return collection_from_pb(self._call(self._stubs.cache.CreateCache, request))

    def cache_store(
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
        """Stores `response` under the prompt's embedding; `scope` (a user or session) keeps
        it from every lookup of another scope, `shared=True` makes it a tenant-wide answer
        (service keys only; a service key gives one of the two). Returns the entry id."""
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
        return str(self._call(self._stubs.cache.Store, request).id)

    def cache_lookup(
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
        """The most similar live entry of `scope` (or, with `shared=True`, of the tenant-wide
        entries) at least `min_similarity` close and at most `max_age_seconds` old, or None.
        An end user's token may leave both out: its own scope is taken."""
        request = _requests.cache_lookup(
            self._names, cache, vector, min_similarity, max_age_seconds, scope, fingerprint, shared
        )
        response = self._call(self._stubs.cache.Lookup, request)
        return cache_entry_from_pb(response.entry) if response.hit else None

    def cache_invalidate(
        self, cache: str, ids: Sequence[str] | None = None, *, scope: str | None = None
    ) -> int:
        """Drops the entries `ids`, or every entry of `scope` (give one of the two)."""
        request = _requests.cache_invalidate(self._names, cache, ids, scope)
        return int(self._call(self._stubs.cache.Invalidate, request).invalidated)

    # --- sessions -----------------------------------------------------------------------------

    def create_session(
        self,
        session_id: str,
        dimension: int,
        *,
        idle_ttl_seconds: int,
        absolute_ttl_seconds: int,
        metric: str = "cosine",
    ) -> Session:
        """Creates a session: working memory that ends after `idle_ttl_seconds` without
        activity or `absolute_ttl_seconds` in all (dimension 0: items without vectors)."""
        request = create_session_request(
            self._names.tenant,
            session_id,
            dimension,
            idle_ttl_seconds,
            absolute_ttl_seconds,
            metric,
        )
        return session_from_pb(self._call(self._stubs.memory.CreateSession, request))

    def session(self, session_id: str) -> SessionHandle:
        """A handle on one session of this tenant, with this handle's credential."""
        return SessionHandle(
            self._stubs, self._policy, self._names.tenant, session_id, self._secret
        )

    # --- audit and keys -----------------------------------------------------------------------

    def audit_events(
        self,
        *,
        start_time: datetime | None = None,
        page_size: int = 0,
        limit: int | None = None,
    ) -> Iterator[AuditEvent]:
        """The tenant's audit trail, oldest first, from `start_time` on, fetched lazily in
        pages of `page_size` (0: 500; at least 2), to its end or to `limit` events."""
        token, left = "", limit
        while left is None or left > 0:
            page = self._call(
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

    def create_key(
        self, role: str, *, ttl_seconds: int | None = None, description: str = ""
    ) -> tuple[ApiKey, str]:
        """Creates a key of this tenant with `role` (`read`, `write`, `tenant_admin`); needs a
        TENANT_ADMIN key. Returns the key and its secret, which is shown only this once."""
        request = _requests.create_key(self._names.parent, role, ttl_seconds, description)
        response = self._call(self._stubs.keys.CreateApiKey, request)
        return api_key_from_pb(response.key), response.secret

    def list_keys(self) -> list[ApiKey]:
        request = keys_pb2.ListApiKeysRequest(parent=self._names.parent)
        return [api_key_from_pb(k) for k in self._call(self._stubs.keys.ListApiKeys, request).keys]

    def revoke_key(self, key_id: str) -> None:
        """Revokes the key; it fails with Unauthenticated from the next request on."""
        request = keys_pb2.RevokeApiKeyRequest(name=self._names.key(key_id))
        self._call(self._stubs.keys.RevokeApiKey, request)


class AdminClient:
    """Tenant and key management with the server's admin token, kept apart from TenantHandle
    so application code never needs that token."""

    __slots__ = ("_call", "_stubs")

    def __init__(self, stubs: Stubs, policy: Policy, admin_token: str) -> None:
        self._stubs = stubs
        self._call = Caller(policy, bearer(admin_token, "admin token"))

    def __repr__(self) -> str:
        return "AdminClient(..)"

    def create_tenant(
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
        """Creates a tenant; limits not given are unlimited (quotas) or the server's defaults
        (rate limits, shares of the server, audit retention)."""
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
        return tenant_from_pb(self._call(self._stubs.admin.CreateTenant, request))

    def get_tenant(self, tenant_id: str) -> Tenant:
        request = admin_pb2.GetTenantRequest(name=tenant_name(tenant_id))
        return tenant_from_pb(self._call(self._stubs.admin.GetTenant, request))

    def list_tenants(self) -> list[Tenant]:
        """Every tenant, following pages to the end."""
        out: list[Tenant] = []
        token = ""
        while True:
            request = admin_pb2.ListTenantsRequest(
                page_size=_requests.TENANT_PAGE, page_token=token
            )
            page = self._call(self._stubs.admin.ListTenants, request)
            out.extend(tenant_from_pb(t) for t in page.tenants)
            token = page.next_page_token
            if not token:
                return out

    def update_tenant(
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
        """Changes the settings given (each named in the request's field mask); the others
        keep their values. 0 means unlimited (or, for rate limits and shares of the server, the
        server's default)."""
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
        return tenant_from_pb(self._call(self._stubs.admin.UpdateTenant, request))

    def delete_tenant(self, tenant_id: str) -> None:
        """Deletes the tenant with all its data and keys."""
        request = admin_pb2.DeleteTenantRequest(name=tenant_name(tenant_id))
        self._call(self._stubs.admin.DeleteTenant, request)

    def create_key(
        self,
        tenant_id: str,
        role: str,
        *,
        ttl_seconds: int | None = None,
        description: str = "",
    ) -> tuple[ApiKey, str]:
        """Creates a key of `tenant_id` with `role` (`read`, `write`, `tenant_admin`). Returns
        the key and its secret, which is shown only this once."""
        request = _requests.create_key(tenant_name(tenant_id), role, ttl_seconds, description)
        response = self._call(self._stubs.keys.CreateApiKey, request)
        return api_key_from_pb(response.key), response.secret

    def list_keys(self, tenant_id: str) -> list[ApiKey]:
        request = keys_pb2.ListApiKeysRequest(parent=tenant_name(tenant_id))
        return [api_key_from_pb(k) for k in self._call(self._stubs.keys.ListApiKeys, request).keys]

    def revoke_key(self, tenant_id: str, key_id: str) -> None:
        request = keys_pb2.RevokeApiKeyRequest(name=key_name(tenant_id, key_id))
        self._call(self._stubs.keys.RevokeApiKey, request)
