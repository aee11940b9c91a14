"""Sessions from Python: a `SessionHandle` is fixed to one session of one tenant when it is made,
like a `TenantHandle` to its tenant, and no method takes a session id, so code holding it can't
reach another session. A backend serving an end user builds one from a token bound to the
session (its `session` claim), which the server refuses everywhere else anyway."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bulkhead._call import AsyncCaller, Caller, Policy, bearer
from bulkhead._names import check_id, tenant_name
from bulkhead._proto.bulkhead.v1 import memory_pb2
from bulkhead._stubs import Stubs
from bulkhead.types import (
    METRICS,
    MetadataValue,
    Vector,
    enum_value,
    metadata_from_pb,
    metadata_to_pb,
    set_vector,
    time_from_pb,
)

__all__ = ["AsyncSessionHandle", "MemoryItem", "Recalled", "Session", "SessionHandle"]

KINDS = {
    "turn": memory_pb2.TURN,
    "tool_result": memory_pb2.TOOL_RESULT,
    "retrieved_chunks": memory_pb2.RETRIEVED_CHUNKS,
}
_KIND_NAMES = {v: k for k, v in KINDS.items()}
_METRIC_NAMES = {v: k for k, v in METRICS.items()}
_PAGE = 500


@dataclass(slots=True)
class Session:
    """A live session's settings and figures."""

    name: str
    create_time: datetime | None
    last_active_time: datetime | None
    expire_time: datetime | None
    idle_ttl_seconds: int
    absolute_ttl_seconds: int
    items: int
    dimension: int
    metric: str


@dataclass(slots=True)
class MemoryItem:
    """One item of a session; `id` is empty for items appended without one."""

    id: str
    sequence: int
    kind: str
    text: str
    metadata: dict[str, MetadataValue]
    chunk_ids: list[str]
    create_time: datetime | None
    vector: list[float]


@dataclass(slots=True)
class Recalled:
    item: MemoryItem
    score: float


def session_from_pb(message: memory_pb2.Session) -> Session:
    return Session(
        name=message.name,
        create_time=time_from_pb(message, "create_time"),
        last_active_time=time_from_pb(message, "last_active_time"),
        expire_time=time_from_pb(message, "expire_time"),
        idle_ttl_seconds=message.idle_ttl_seconds,
        absolute_ttl_seconds=message.absolute_ttl_seconds,
        items=message.items,
        dimension=message.dimension,
        metric=_METRIC_NAMES.get(message.metric, "unspecified"),
    )


def item_from_pb(message: memory_pb2.MemoryItem) -> MemoryItem:
    return MemoryItem(
        id=message.id,
        sequence=message.sequence,
        kind=_KIND_NAMES.get(message.kind, "unspecified"),
        text=message.text,
        metadata=metadata_from_pb(message.metadata),
        chunk_ids=list(message.chunk_ids),
        create_time=time_from_pb(message, "create_time"),
        vector=list(message.vector),
    )


def create_session_request(
    tenant: str,
    session_id: str,
    dimension: int,
    idle_ttl_seconds: int,
    absolute_ttl_seconds: int,
    metric: str,
) -> memory_pb2.CreateSessionRequest:
    return memory_pb2.CreateSessionRequest(
        parent=tenant_name(tenant),
        session_id=check_id("session", session_id),
        idle_ttl_seconds=idle_ttl_seconds,
        absolute_ttl_seconds=absolute_ttl_seconds,
        dimension=dimension,
        metric=enum_value("metric", METRICS, metric),
    )


def session_name(tenant: str, session: str) -> str:
    return f"{tenant_name(tenant)}/sessions/{check_id('session', session)}"


def append_request(name: str, items: Sequence[Mapping[str, Any]]) -> memory_pb2.AppendRequest:
    """`items` are dicts of `SessionHandle.append`'s arguments."""
    request = memory_pb2.AppendRequest(session=name)
    for item in items:
        message = request.items.add(
            id=item.get("id") or "",
            kind=enum_value("kind", KINDS, item.get("kind", "turn")),
            text=item["text"],
            chunk_ids=list(item.get("chunk_ids") or ()),
        )
        if item.get("vector") is not None:
            # Field 5 here: `set_vector` writes field 2, where requests keep their vector.
            message.vector.extend(float(x) for x in item["vector"])
        for key, value in metadata_to_pb(item.get("metadata")).items():
            message.metadata[key].CopyFrom(value)
    return request


def one_item(
    text: str,
    kind: str,
    id: str,  # noqa: A002 - the item's id, as the API names it
    vector: Vector | None,
    metadata: Mapping[str, Any] | None,
    chunk_ids: Sequence[str],
) -> dict[str, Any]:
    return {
        "text": text,
        "kind": kind,
        "id": id,
        "vector": vector,
        "metadata": metadata,
        "chunk_ids": chunk_ids,
    }


def recall_request(
    name: str, vector: Vector, top_k: int, last_items: int, max_age_seconds: int | None
) -> memory_pb2.RecallRequest:
    request = memory_pb2.RecallRequest(session=name, top_k=top_k, last_items=last_items)
    set_vector(request, vector)
    if max_age_seconds is not None:
        request.max_age_seconds = max_age_seconds
    return request


class SessionHandle:
    """One session's working memory: append, recall, history, info, end."""

    __slots__ = ("_call", "_name", "_stubs")

    def __init__(self, stubs: Stubs, policy: Policy, tenant: str, session: str, secret: str):
        self._stubs = stubs
        self._name = session_name(tenant, session)
        self._call = Caller(policy, bearer(secret, "api_key"))

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"SessionHandle({self._name!r})"

    def info(self) -> Session:
        """The session's settings and figures; NotFound once it ended or expired."""
        request = memory_pb2.GetSessionRequest(name=self._name)
        return session_from_pb(self._call(self._stubs.memory.GetSession, request))

    def append(
        self,
        text: str,
        *,
        kind: str = "turn",
        id: str = "",  # noqa: A002 - the item's id, as the API names it
        vector: Vector | None = None,
        metadata: Mapping[str, Any] | None = None,
        chunk_ids: Sequence[str] = (),
    ) -> int:
        """Appends one item; returns its sequence number."""
        item = one_item(text, kind, id, vector, metadata, chunk_ids)
        return self.append_many([item])[0]

    def append_many(self, items: Sequence[Mapping[str, Any]]) -> list[int]:
        """Appends items (dicts of `append`'s arguments) in order, all or none."""
        request = append_request(self._name, items)
        return list(self._call(self._stubs.memory.Append, request).sequences)

    def recall(
        self,
        vector: Vector,
        top_k: int = 5,
        *,
        last_items: int = 0,
        max_age_seconds: int | None = None,
    ) -> list[Recalled]:
        """The `top_k` items closest to `vector` among the last `last_items` (0: all) and, with
        `max_age_seconds`, those appended that recently; closest first."""
        request = recall_request(self._name, vector, top_k, last_items, max_age_seconds)
        response = self._call(self._stubs.memory.Recall, request)
        return [Recalled(item_from_pb(r.item), r.score) for r in response.items]

    def history(self) -> list[MemoryItem]:
        """Every item in the order it was appended, following pages to the end."""
        items: list[MemoryItem] = []
        token = ""
        while True:
            request = memory_pb2.HistoryRequest(
                session=self._name, page_size=_PAGE, page_token=token
            )
            page = self._call(self._stubs.memory.History, request)
            items.extend(item_from_pb(i) for i in page.items)
            token = page.next_page_token
            if not token:
                return items

    def end(self) -> None:
        """Ends the session now: from then on it is NotFound, and its items are removed."""
        self._call(self._stubs.memory.EndSession, memory_pb2.EndSessionRequest(name=self._name))


class AsyncSessionHandle:
    """The asyncio twin of `SessionHandle`, method for method."""

    __slots__ = ("_call", "_name", "_stubs")

    def __init__(self, stubs: Stubs, policy: Policy, tenant: str, session: str, secret: str):
        self._stubs = stubs
        self._name = session_name(tenant, session)
        self._call = AsyncCaller(policy, bearer(secret, "api_key"))

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"AsyncSessionHandle({self._name!r})"

    async def info(self) -> Session:
        request = memory_pb2.GetSessionRequest(name=self._name)
        return session_from_pb(await self._call(self._stubs.memory.GetSession, request))

    async def append(
        self,
        text: str,
        *,
        kind: str = "turn",
        id: str = "",  # noqa: A002 - the item's id, as the API names it
        vector: Vector | None = None,
        metadata: Mapping[str, Any] | None = None,
        chunk_ids: Sequence[str] = (),
    ) -> int:
        item = one_item(text, kind, id, vector, metadata, chunk_ids)
        return (await self.append_many([item]))[0]

    async def append_many(self, items: Sequence[Mapping[str, Any]]) -> list[int]:
        request = append_request(self._name, items)
        return list((await self._call(self._stubs.memory.Append, request)).sequences)

    async def recall(
        self,
        vector: Vector,
        top_k: int = 5,
        *,
        last_items: int = 0,
        max_age_seconds: int | None = None,
    ) -> list[Recalled]:
        request = recall_request(self._name, vector, top_k, last_items, max_age_seconds)
        response = await self._call(self._stubs.memory.Recall, request)
        return [Recalled(item_from_pb(r.item), r.score) for r in response.items]

    async def history(self) -> list[MemoryItem]:
        items: list[MemoryItem] = []
        token = ""
        while True:
            request = memory_pb2.HistoryRequest(
                session=self._name, page_size=_PAGE, page_token=token
            )
            page = await self._call(self._stubs.memory.History, request)
            items.extend(item_from_pb(i) for i in page.items)
            token = page.next_page_token
            if not token:
                return items

    async def end(self) -> None:
        request = memory_pb2.EndSessionRequest(name=self._name)
        await self._call(self._stubs.memory.EndSession, request)
