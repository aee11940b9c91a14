"""Request messages, built once for the sync and the asyncio handles alike: every resource name
comes from the handle's `Names` (so from its one tenant), every argument is checked and
converted here, and the two clients differ only in how they send."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask

from bulkhead import filters as _filters
from bulkhead._names import Names, check_id
from bulkhead._proto.bulkhead.v1 import (
    admin_pb2,
    audit_pb2,
    cache_pb2,
    collections_pb2,
    keys_pb2,
    records_pb2,
)
from bulkhead.errors import InvalidArgument
from bulkhead.types import (
    FIELD_TYPES,
    METRICS,
    ROLES,
    Vector,
    enum_value,
    hnsw_to_pb,
    metadata_to_pb,
    set_vector,
    timestamp,
    vector_field,
)

# Page sizes when following pages to the end.
LIST_PAGE = 500
AUDIT_PAGE = 500
TENANT_PAGE = 1000
# Ids per Get/Delete request (the server's max-batch is 1,000).
ID_BATCH = 500


def _positive(name: str, value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or int(value) <= 0):
        raise InvalidArgument(f"{name} must be a positive number of seconds, got {value!r}")
    return None if value is None else int(value)


# --- collections ------------------------------------------------------------------------------


def create_collection(
    names: Names,
    collection: str,
    dimension: int,
    metric: str,
    default_ttl_seconds: int | None,
    indexed_fields: Mapping[str, str] | None,
    hnsw: Mapping[str, Any] | None,
) -> collections_pb2.CreateCollectionRequest:
    return collections_pb2.CreateCollectionRequest(
        parent=names.parent,
        collection_id=check_id("collection", collection),
        dimension=dimension,
        metric=enum_value("metric", METRICS, metric),  # type: ignore[arg-type]
        default_ttl_seconds=_positive("default_ttl_seconds", default_ttl_seconds),
        hnsw=hnsw_to_pb(hnsw),
        indexed_fields={
            name: enum_value(f"field type of {name!r}", FIELD_TYPES, kind)  # type: ignore[misc]
            for name, kind in (indexed_fields or {}).items()
        },
    )


def get_collection(names: Names, collection: str) -> collections_pb2.GetCollectionRequest:
    return collections_pb2.GetCollectionRequest(name=names.collection(collection))


def list_collections(names: Names, page_token: str) -> collections_pb2.ListCollectionsRequest:
    return collections_pb2.ListCollectionsRequest(
        parent=names.parent, page_size=LIST_PAGE, page_token=page_token
    )


def delete_collection(names: Names, collection: str) -> collections_pb2.DeleteCollectionRequest:
    return collections_pb2.DeleteCollectionRequest(name=names.collection(collection))


# --- records ----------------------------------------------------------------------------------


class QueryEncoder:
    """Encodes QueryRequests straight to bytes. Serialized protobuf messages concatenate into
    their merge, so a request is its fixed fields (collection, top_k, flags, ef, filter),
    encoded once per combination and memoised, followed by the packed vector field: the hot
    path builds no message object and serializes nothing but the vector."""

    __slots__ = ("_heads", "_names")

    _MAX_HEADS = 256

    def __init__(self, names: Names) -> None:
        self._names = names
        self._heads: dict[tuple[str, int, bool, bool, bool, int], bytes] = {}

    def __call__(
        self,
        collection: str,
        vector: Vector,
        top_k: int,
        filter: _filters.FilterLike | None,
        include_text: bool,
        include_metadata: bool,
        include_vector: bool,
        ef: int,
    ) -> bytes:
        key = (collection, top_k, include_text, include_metadata, include_vector, ef)
        head = self._heads.get(key) if filter is None else None
        if head is None:
            try:
                message = records_pb2.QueryRequest(
                    collection=self._names.collection(collection),
                    top_k=top_k,
                    include_text=include_text,
                    include_metadata=include_metadata,
                    include_vector=include_vector,
                    ef=ef,
                    filter=None if filter is None else _filters.as_filter(filter),
                )
            except (TypeError, ValueError) as e:
                if isinstance(e, InvalidArgument):
                    raise
                raise InvalidArgument(f"invalid query: {e}") from None
            head = message.SerializeToString()
            if filter is None:
                if len(self._heads) >= self._MAX_HEADS:
                    self._heads.clear()
                self._heads[key] = head
        return head + vector_field(vector)


# --- semantic cache ---------------------------------------------------------------------------


END_USER_SCOPES = {
    "user": collections_pb2.USER,
    "session": collections_pb2.SESSION,
}


def create_cache(
    names: Names,
    cache_id: str,
    dimension: int,
    metric: str,
    default_ttl_seconds: int | None,
    end_user_scope: str = "user",
    similarity_floor: float | None = None,
) -> cache_pb2.CreateCacheRequest:
    return cache_pb2.CreateCacheRequest(
        parent=names.parent,
        cache_id=check_id("cache", cache_id),
        dimension=dimension,
        metric=enum_value("metric", METRICS, metric),  # type: ignore[arg-type]
        default_ttl_seconds=_positive("default_ttl_seconds", default_ttl_seconds),
        end_user_scope=enum_value("end_user_scope", END_USER_SCOPES, end_user_scope),  # type: ignore[arg-type]
        similarity_floor=similarity_floor,
    )


def cache_store(
    names: Names,
    cache: str,
    vector: Vector,
    prompt: str,
    response: str,
    metadata: Mapping[str, Any] | None,
    ttl_seconds: int | None,
    scope: str | None,
    fingerprint: str | None = None,
    shared: bool = False,
) -> cache_pb2.StoreRequest:
    request = cache_pb2.StoreRequest(
        cache=names.cache(cache),
        prompt=prompt,
        response=response,
        metadata=metadata_to_pb(metadata),
        ttl_seconds=_positive("ttl_seconds", ttl_seconds),
        scope=scope,
        fingerprint=fingerprint,
        shared=shared,
    )
    set_vector(request, vector)
    return request


def cache_lookup(
    names: Names,
    cache: str,
    vector: Vector,
    min_similarity: float,
    max_age_seconds: int | None,
    scope: str | None,
    fingerprint: str | None = None,
    shared: bool = False,
) -> cache_pb2.LookupRequest:
    request = cache_pb2.LookupRequest(
        cache=names.cache(cache),
        min_similarity=min_similarity,
        max_age_seconds=_positive("max_age_seconds", max_age_seconds),
        scope=scope,
        fingerprint=fingerprint,
        shared=shared,
    )
    set_vector(request, vector)
    return request


def cache_invalidate(
    names: Names, cache: str, ids: Sequence[str] | None, scope: str | None
) -> cache_pb2.InvalidateRequest:
    if isinstance(ids, str):
        ids = [ids]
    return cache_pb2.InvalidateRequest(cache=names.cache(cache), ids=ids or [], scope=scope)


# --- audit and keys ---------------------------------------------------------------------------


def audit_page(
    names: Names, start_time: datetime | None, page_size: int, page_token: str
) -> audit_pb2.ListAuditEventsRequest:
    """A page request of the audit trail. Each request is itself audited, so pages hold at
    least 2 events: with 1, an iteration would append as many events as it reads and never
    reach the end of the trail."""
    return audit_pb2.ListAuditEventsRequest(
        parent=names.parent,
        page_size=max(2, page_size) if page_size > 0 else AUDIT_PAGE,
        page_token=page_token,
        start_time=None if start_time is None else timestamp(start_time),
    )


def create_key(
    parent: str, role: str, ttl_seconds: int | None, description: str
) -> keys_pb2.CreateApiKeyRequest:
    return keys_pb2.CreateApiKeyRequest(
        parent=parent,
        role=enum_value("role", ROLES, role),  # type: ignore[arg-type]
        ttl_seconds=_positive("ttl_seconds", ttl_seconds),
        description=description,
    )


# --- tenants ----------------------------------------------------------------------------------

_QUOTA_FIELDS = ("max_collections", "max_records", "max_stored_bytes")
_RATE_FIELDS = ("requests_per_second", "burst", "write_bytes_per_second")
_SHARE_FIELDS = ("requests_in_flight", "open_streams", "engine_threads", "write_bytes_in_flight")
_SECONDS_FIELDS = ("audit_retention_seconds", "max_token_lifetime_seconds")
TENANT_SETTINGS = (*_QUOTA_FIELDS, *_RATE_FIELDS, *_SHARE_FIELDS, *_SECONDS_FIELDS)


def _tenant_settings(
    settings: Mapping[str, float | int | None],
) -> tuple[
    admin_pb2.Quota, admin_pb2.RateLimit, admin_pb2.ServerShare, dict[str, int], list[str]
]:
    """The quota, rate limit, share of the server and durations (audit retention, token
    lifetime) of `settings` (the given ones only) and the field mask paths naming exactly
    those."""
    unknown = set(settings) - set(TENANT_SETTINGS)
    if unknown:
        raise InvalidArgument(
            f"unknown tenant settings {sorted(unknown)}; expected {', '.join(TENANT_SETTINGS)}"
        )
    quota, rate, share = admin_pb2.Quota(), admin_pb2.RateLimit(), admin_pb2.ServerShare()
    seconds: dict[str, int] = {}
    paths: list[str] = []
    for name in TENANT_SETTINGS:
        value = settings.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or value < 0:
            raise InvalidArgument(f"{name} must be a number of at least 0, got {value!r}")
        if name in _QUOTA_FIELDS:
            setattr(quota, name, int(value))
            paths.append(f"quota.{name}")
        elif name == "requests_per_second":
            rate.requests_per_second = float(value)
            paths.append(f"rate_limit.{name}")
        elif name in _RATE_FIELDS:
            setattr(rate, name, int(value))
            paths.append(f"rate_limit.{name}")
        elif name in _SHARE_FIELDS:
            setattr(share, name, int(value))
            paths.append(f"share.{name}")
        else:
            seconds[name] = int(value)
            paths.append(name)
    return quota, rate, share, seconds, paths


def create_tenant(
    tenant_id: str, settings: Mapping[str, float | int | None]
) -> admin_pb2.CreateTenantRequest:
    quota, rate, share, seconds, paths = _tenant_settings(settings)
    return admin_pb2.CreateTenantRequest(
        tenant_id=check_id("tenant", tenant_id),
        quota=quota if any(p.startswith("quota.") for p in paths) else None,
        rate_limit=rate if any(p.startswith("rate_limit.") for p in paths) else None,
        share=share if any(p.startswith("share.") for p in paths) else None,
        **seconds,
    )


def update_tenant(
    name: str, settings: Mapping[str, float | int | None]
) -> admin_pb2.UpdateTenantRequest:
    quota, rate, share, seconds, paths = _tenant_settings(settings)
    if not paths:
        raise InvalidArgument("nothing to update: give at least one setting")
    return admin_pb2.UpdateTenantRequest(
        tenant=admin_pb2.Tenant(name=name, quota=quota, rate_limit=rate, share=share, **seconds),
        update_mask=FieldMask(paths=paths),
    )
