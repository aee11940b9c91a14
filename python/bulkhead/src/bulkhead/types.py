"""The values applications build and read, as plain dataclasses rather than protobuf messages,
and their conversion to and from the wire. Vectors take a fast path: a numpy array is sent as
the packed float32 bytes protobuf expects (parsed into the message in C), which is what keeps
per-query overhead low for 384-dimensional embeddings; element-wise copies cost ~40x more."""

from __future__ import annotations

import numbers
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf.timestamp_pb2 import Timestamp

from bulkhead._names import last_segment
from bulkhead._proto.bulkhead.v1 import (
    admin_pb2,
    audit_pb2,
    cache_pb2,
    collections_pb2,
    common_pb2,
    keys_pb2,
    records_pb2,
)
from bulkhead.errors import InvalidArgument

__all__ = [
    "ApiKey",
    "AuditEvent",
    "CacheEntry",
    "Collection",
    "Hit",
    "MetadataValue",
    "Record",
    "Tenant",
    "Vector",
]

MetadataValue = str | int | float | bool | list[str]
"""A metadata value: string, 64-bit integer, double, bool or list of strings."""

Vector = Sequence[float] | npt.NDArray[Any]
"""A vector: any sequence of floats, or a 1-D numpy array (float32, or converted to it)."""


@dataclass(slots=True)
class Record:
    """A record to upsert, or one read back by `get`."""

    id: str
    vector: Vector
    text: str | None = None
    metadata: dict[str, MetadataValue] = field(default_factory=dict)
    # Time to live from the upsert; None takes the collection's default.
    ttl_seconds: int | None = None
    # When the record expires: set on records read back, ignored on upsert.
    expire_time: datetime | None = None


@dataclass(slots=True)
class Hit:
    """One search result; `score` is the cosine similarity or dot product (higher is closer),
    or the euclidean distance for L2 (lower is closer). `text`, `metadata` and `vector` are
    filled when the query asked for them."""

    id: str
    score: float
    text: str | None = None
    metadata: dict[str, MetadataValue] = field(default_factory=dict)
    vector: list[float] | None = None


@dataclass(slots=True)
class Collection:
    """A collection (or a semantic cache, which is a collection). `metric` is `cosine`, `dot`
    or `l2`; `indexed_fields` maps field names to `keyword`, `integer`, `float` or `bool`."""

    name: str
    collection_id: str
    dimension: int
    metric: str
    record_count: int
    indexed_fields: dict[str, str]
    default_ttl_seconds: int | None
    create_time: datetime | None = None
    # m, ef_construction, ef_search, flat_threshold, quantization, build_threads, segments.
    hnsw: dict[str, Any] = field(default_factory=dict)
    # kind (flat/hnsw), building, memory_bytes, segment_time, changes_since_segment.
    index: dict[str, Any] = field(default_factory=dict)
    # "records", or "semantic_cache" for a cache (whose reserved `_` fields only
    # `SemanticCache.store` writes).
    kind: str = "unspecified"


@dataclass(slots=True)
class CacheEntry:
    """A semantic-cache hit."""

    id: str
    prompt: str
    response: str
    metadata: dict[str, MetadataValue]
    similarity: float
    age_seconds: int


@dataclass(slots=True)
class ApiKey:
    """An API key (never its secret, which only `create_key` returns, once). `role` is `read`,
    `write` or `tenant_admin`."""

    name: str
    key_id: str
    role: str
    description: str
    create_time: datetime | None
    expire_time: datetime | None
    revoked: bool
    tenant_id: str = ""


@dataclass(slots=True)
class Tenant:
    """A tenant and its limits (0: unlimited, or for rate limits the server's default).
    `state` is `cold`, `warm` or `hot`."""

    name: str
    tenant_id: str
    create_time: datetime | None = None
    max_collections: int = 0
    max_records: int = 0
    max_stored_bytes: int = 0
    requests_per_second: float = 0.0
    burst: int = 0
    write_bytes_per_second: int = 0
    audit_retention_seconds: int = 0
    state: str = "unspecified"
    group: int = 0
    max_token_lifetime_seconds: int = 0
    # The tenant's share of the server; 0: the server's setting.
    requests_in_flight: int = 0
    open_streams: int = 0
    engine_threads: int = 0
    write_bytes_in_flight: int = 0


@dataclass(slots=True)
class AuditEvent:
    """One entry of a tenant's audit trail; `principal` is a key id, `admin` or `jwt:<sub>`,
    `outcome` a status code name such as `OK` or `PERMISSION_DENIED`."""

    sequence: int
    time: datetime | None
    principal: str
    method: str
    resource: str
    outcome: str
    record_count: int


# --- enums: lowercase names on the Python side ------------------------------------------------

METRICS = {
    "cosine": collections_pb2.COSINE,
    "dot": collections_pb2.DOT,
    "l2": collections_pb2.L2,
}
FIELD_TYPES = {
    "keyword": collections_pb2.KEYWORD,
    "integer": collections_pb2.INTEGER,
    "float": collections_pb2.FLOAT,
    "bool": collections_pb2.BOOL,
}
ROLES = {
    "read": keys_pb2.READ,
    "write": keys_pb2.WRITE,
    "tenant_admin": keys_pb2.TENANT_ADMIN,
}
QUANTIZATIONS = {
    "int8": collections_pb2.INT8,
    "none": collections_pb2.QUANTIZATION_NONE,
}
SEGMENT_POLICIES = {
    "on": collections_pb2.SEGMENTS_ON,
    "off": collections_pb2.SEGMENTS_OFF,
}
_TENANT_STATES = {
    admin_pb2.TENANT_STATE_COLD: "cold",
    admin_pb2.TENANT_STATE_WARM: "warm",
    admin_pb2.TENANT_STATE_HOT: "hot",
}
_INDEX_KINDS = {collections_pb2.FLAT: "flat", collections_pb2.HNSW: "hnsw"}
_COLLECTION_KINDS = {
    collections_pb2.RECORDS: "records",
    collections_pb2.SEMANTIC_CACHE: "semantic_cache",
}


def _reverse(table: Mapping[str, int]) -> dict[int, str]:
    return {v: k for k, v in table.items()}


_METRIC_NAMES = _reverse(METRICS)
_FIELD_TYPE_NAMES = _reverse(FIELD_TYPES)
_ROLE_NAMES = _reverse(ROLES)
_QUANTIZATION_NAMES = _reverse(QUANTIZATIONS)
_SEGMENT_NAMES = _reverse(SEGMENT_POLICIES)


def enum_value(kind: str, table: Mapping[str, int], value: str | int) -> int:
    """The wire value of `value`, a name of `table` in any case (or the wire value itself)."""
    if isinstance(value, str):
        wire = table.get(value.lower())
        if wire is not None:
            return wire
    elif isinstance(value, int) and value in table.values():
        return value
    raise InvalidArgument(f"unknown {kind} {value!r}; expected one of {', '.join(table)}")


# --- vectors ----------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Field 2, wire type 2 (length-delimited): `vector` in Record, QueryRequest, LookupRequest and
# StoreRequest alike.
_VECTOR_TAG = b"\x12"
_LENGTH_PREFIXES: dict[int, bytes] = {}
_PACKERS: dict[int, struct.Struct] = {}


def _packed_floats(vector: Vector) -> bytes:
    """`vector` as little-endian float32 bytes: lists and tuples through a cached `struct`
    (3x cheaper than building an array from them), anything else through numpy (no copy for
    a float32 array)."""
    if isinstance(vector, (list, tuple)):
        packer = _PACKERS.get(len(vector))
        if packer is None:
            packer = _PACKERS.setdefault(len(vector), struct.Struct(f"<{len(vector)}f"))
        try:
            return packer.pack(*vector)
        except (struct.error, OverflowError, TypeError) as e:
            raise InvalidArgument(f"invalid vector: {e}") from None
    try:
        arr = np.asarray(vector, dtype="<f4")
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"invalid vector: {e}") from None
    if arr.ndim != 1:
        raise InvalidArgument(f"a vector must be 1-dimensional, got shape {arr.shape}")
    return arr.tobytes()


def vector_field(vector: Vector) -> bytes:
    """`vector` encoded as the packed `repeated float vector = 2` field, ready to append to a
    serialized message (or `MergeFromString`) whose field 2 is the vector."""
    raw = _packed_floats(vector)
    prefix = _LENGTH_PREFIXES.get(len(raw))
    if prefix is None:
        prefix = _LENGTH_PREFIXES.setdefault(len(raw), _VECTOR_TAG + _varint(len(raw)))
    return prefix + raw


def set_vector(message: Any, vector: Vector) -> None:
    """Sets field 2 (`vector`) of a fresh message from the packed bytes: protobuf parses them
    in C, where copying element by element costs ~40x more for a numpy array."""
    message.MergeFromString(vector_field(vector))


# --- metadata ---------------------------------------------------------------------------------


def value_to_pb(key: str, value: Any) -> common_pb2.Value:
    if isinstance(value, str):
        return common_pb2.Value(string_value=value)
    if isinstance(value, (bool, np.bool_)):
        return common_pb2.Value(bool_value=bool(value))
    if isinstance(value, numbers.Integral):
        return common_pb2.Value(int_value=int(value))
    if isinstance(value, numbers.Real):
        return common_pb2.Value(double_value=float(value))
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return common_pb2.Value(string_list=common_pb2.StringList(values=value))
    raise InvalidArgument(
        f"metadata[{key!r}]: {type(value).__name__} is not a metadata value "
        "(string, int, float, bool or list of strings)"
    )


def metadata_to_pb(metadata: Mapping[str, Any] | None) -> dict[str, common_pb2.Value]:
    if not metadata:
        return {}
    return {k: value_to_pb(k, v) for k, v in metadata.items()}


def value_from_pb(value: common_pb2.Value) -> MetadataValue | None:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "string_list":
        return list(value.string_list.values)
    return None


def metadata_from_pb(metadata: Mapping[str, common_pb2.Value]) -> dict[str, MetadataValue]:
    out: dict[str, MetadataValue] = {}
    for k, v in metadata.items():
        converted = value_from_pb(v)
        if converted is not None:
            out[k] = converted
    return out


# --- times ------------------------------------------------------------------------------------


def time_from_pb(message: Any, field_name: str) -> datetime | None:
    if not message.HasField(field_name):
        return None
    ts: Timestamp = getattr(message, field_name)
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=timezone.utc)


def timestamp(when: datetime) -> Timestamp:
    """`when` as a Timestamp; a naive datetime is taken as UTC."""
    ts = Timestamp()
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    ts.FromDatetime(when)
    return ts


# --- records and hits -------------------------------------------------------------------------


def record_to_pb(record: Record) -> records_pb2.Record:
    message = records_pb2.Record(
        id=record.id,
        text=record.text,
        metadata=metadata_to_pb(record.metadata),
        ttl_seconds=record.ttl_seconds,
    )
    set_vector(message, record.vector)
    return message


def record_from_pb(message: records_pb2.Record) -> Record:
    return Record(
        id=message.id,
        vector=list(message.vector),
        text=message.text if message.HasField("text") else None,
        metadata=metadata_from_pb(message.metadata),
        expire_time=time_from_pb(message, "expire_time"),
    )


def hits_from_pb(
    response: records_pb2.QueryResponse, text: bool, metadata: bool, vector: bool
) -> list[Hit]:
    """The hits of `response`, reading only the fields the query asked for (each field read
    of a protobuf message costs; a bare top-10 answer is the hot path)."""
    if not (text or metadata or vector):
        return [Hit(h.id, h.score) for h in response.hits]
    return [
        Hit(
            h.id,
            h.score,
            h.text if text and h.HasField("text") else None,
            metadata_from_pb(h.metadata) if metadata else {},
            list(h.vector) if vector and h.vector else None,
        )
        for h in response.hits
    ]


def chunked_records(
    records: Iterable[Record], max_records: int, max_bytes: int
) -> Iterator[list[records_pb2.Record]]:
    """`records` as wire records in runs of at most `max_records` and about `max_bytes`; a
    record larger than `max_bytes` travels alone. Lazy, so a generator of records is never
    held whole."""
    max_records = max(1, max_records)
    chunk: list[records_pb2.Record] = []
    size = 0
    for record in records:
        message = record_to_pb(record)
        message_size = message.ByteSize() + 8
        if chunk and (len(chunk) >= max_records or size + message_size > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(message)
        size += message_size
    if chunk:
        yield chunk


def id_chunks(ids: Sequence[str] | str, size: int) -> list[list[str]]:
    """`ids` in runs of at most `size` (at least one run, possibly empty, so the server still
    answers for the collection); a lone string is one id, not a sequence of characters."""
    if isinstance(ids, str):
        ids = [ids]
    ids = list(ids)
    size = max(1, size)
    return [ids[i : i + size] for i in range(0, len(ids), size)] or [[]]


# --- other messages ---------------------------------------------------------------------------


def collection_from_pb(message: collections_pb2.Collection) -> Collection:
    hnsw: dict[str, Any] = {}
    if message.HasField("hnsw"):
        h = message.hnsw
        hnsw = {
            "m": h.m,
            "ef_construction": h.ef_construction,
            "ef_search": h.ef_search,
            "flat_threshold": h.flat_threshold,
            "quantization": _QUANTIZATION_NAMES.get(h.quantization, "default"),
            "build_threads": h.build_threads,
            "segments": _SEGMENT_NAMES.get(h.segments, "default"),
        }
    index: dict[str, Any] = {}
    if message.HasField("index"):
        i = message.index
        index = {
            "kind": _INDEX_KINDS.get(i.kind, "unspecified"),
            "building": i.building,
            "memory_bytes": i.memory_bytes,
            "segment_time": time_from_pb(i, "segment_time"),
            "changes_since_segment": i.changes_since_segment,
        }
    return Collection(
        name=message.name,
        collection_id=last_segment(message.name),
        dimension=message.dimension,
        metric=_METRIC_NAMES.get(message.metric, "unspecified"),
        record_count=message.record_count,
        indexed_fields={
            k: _FIELD_TYPE_NAMES.get(v, "unspecified") for k, v in message.indexed_fields.items()
        },
        default_ttl_seconds=(
            message.default_ttl_seconds if message.HasField("default_ttl_seconds") else None
        ),
        create_time=time_from_pb(message, "create_time"),
        kind=_COLLECTION_KINDS.get(message.kind, "unspecified"),
        hnsw=hnsw,
        index=index,
    )


_HNSW_FIELDS = ("m", "ef_construction", "ef_search", "flat_threshold", "build_threads")


def hnsw_to_pb(hnsw: Mapping[str, Any] | None) -> collections_pb2.HnswParams | None:
    """HNSW parameters from a dict of `m`, `ef_construction`, `ef_search`, `flat_threshold`,
    `build_threads`, `quantization` (`int8`/`none`) and `segments` (`on`/`off` or a bool)."""
    if hnsw is None:
        return None
    params = collections_pb2.HnswParams()
    for key, value in hnsw.items():
        if key in _HNSW_FIELDS:
            setattr(params, key, int(value))
        elif key == "quantization":
            params.quantization = enum_value("quantization", QUANTIZATIONS, value)  # type: ignore[assignment]
        elif key == "segments":
            if isinstance(value, bool):
                value = "on" if value else "off"
            params.segments = enum_value("segment policy", SEGMENT_POLICIES, value)  # type: ignore[assignment]
        else:
            raise InvalidArgument(
                f"unknown hnsw parameter {key!r}; expected one of "
                f"{', '.join((*_HNSW_FIELDS, 'quantization', 'segments'))}"
            )
    return params


def cache_entry_from_pb(message: cache_pb2.CacheEntry) -> CacheEntry:
    return CacheEntry(
        id=message.id,
        prompt=message.prompt,
        response=message.response,
        metadata=metadata_from_pb(message.metadata),
        similarity=message.similarity,
        age_seconds=message.age_seconds,
    )


def api_key_from_pb(message: keys_pb2.ApiKey) -> ApiKey:
    parts = message.name.split("/")
    return ApiKey(
        name=message.name,
        key_id=parts[-1],
        role=_ROLE_NAMES.get(message.role, "unspecified"),
        description=message.description,
        create_time=time_from_pb(message, "create_time"),
        expire_time=time_from_pb(message, "expire_time"),
        revoked=message.revoked,
        tenant_id=parts[1] if len(parts) == 4 else "",
    )


def tenant_from_pb(message: admin_pb2.Tenant) -> Tenant:
    return Tenant(
        name=message.name,
        tenant_id=last_segment(message.name),
        create_time=time_from_pb(message, "create_time"),
        max_collections=message.quota.max_collections,
        max_records=message.quota.max_records,
        max_stored_bytes=message.quota.max_stored_bytes,
        requests_per_second=message.rate_limit.requests_per_second,
        burst=message.rate_limit.burst,
        write_bytes_per_second=message.rate_limit.write_bytes_per_second,
        audit_retention_seconds=message.audit_retention_seconds,
        state=_TENANT_STATES.get(message.state, "unspecified"),
        group=message.group,
        max_token_lifetime_seconds=message.max_token_lifetime_seconds,
        requests_in_flight=message.share.requests_in_flight,
        open_streams=message.share.open_streams,
        engine_threads=message.share.engine_threads,
        write_bytes_in_flight=message.share.write_bytes_in_flight,
    )


def audit_event_from_pb(message: audit_pb2.AuditEvent) -> AuditEvent:
    return AuditEvent(
        sequence=message.sequence,
        time=time_from_pb(message, "time"),
        principal=message.principal,
        method=message.method,
        resource=message.resource,
        outcome=message.outcome,
        record_count=message.record_count,
    )
