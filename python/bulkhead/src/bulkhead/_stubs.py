"""The seven service stubs of one channel, made once per client and shared by every handle made
from it (a stub call is a registered method on the channel; building stubs per call would
redo that work on the hot path). The generated stubs accept sync and grpc.aio channels alike.

`query` is Query once more, taking the request already encoded: the query path builds its
bytes itself (see `_requests.QueryEncoder`), which skips a message object per call."""

from __future__ import annotations

from typing import Any

from bulkhead._proto.bulkhead.v1 import (
    admin_pb2_grpc,
    audit_pb2_grpc,
    cache_pb2_grpc,
    collections_pb2_grpc,
    keys_pb2_grpc,
    memory_pb2_grpc,
    records_pb2,
    records_pb2_grpc,
)

QUERY_METHOD = "/bulkhead.v1.RecordService/Query"


class Stubs:
    __slots__ = ("admin", "audit", "cache", "collections", "keys", "memory", "query", "records")

    def __init__(self, channel: Any) -> None:
        self.admin = admin_pb2_grpc.AdminServiceStub(channel)
        self.audit = audit_pb2_grpc.AuditServiceStub(channel)
        self.cache = cache_pb2_grpc.SemanticCacheServiceStub(channel)
        self.collections = collections_pb2_grpc.CollectionServiceStub(channel)
        self.keys = keys_pb2_grpc.KeyServiceStub(channel)
        self.memory = memory_pb2_grpc.MemoryServiceStub(channel)
        self.records = records_pb2_grpc.RecordServiceStub(channel)
        self.query = channel.unary_unary(
            QUERY_METHOD,
            request_serializer=None,
            response_deserializer=records_pb2.QueryResponse.FromString,
            _registered_method=True,
        )
