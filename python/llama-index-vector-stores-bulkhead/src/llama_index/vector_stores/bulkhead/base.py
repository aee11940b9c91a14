"""A LlamaIndex vector store over one Bulkhead collection of one tenant.

The store holds a tenant handle, never a tenant name, so an index built on it can't read or
write another tenant's nodes. Bulkhead filters only work on a collection's indexed fields,
declared when the collection is created, so the store creates its collection with the fields
the caller declares (`indexed_fields`) plus the ones its own operations filter on: `ref_doc_id`
and `doc_id` (delete by document, `VectorStoreQuery.doc_ids`) and `li_node_id` (the node id,
for `node_ids` restrictions and paging).

Each node is one record: id = node id, vector = its embedding, text = its content, metadata =
the node serialised by LlamaIndex (`node_to_metadata_dict`; its `_node_content`/`_node_type`
keys are renamed `li_node_content`/`li_node_type` because Bulkhead reserves keys starting with
`_`) plus the node's metadata values Bulkhead stores natively (strings, integers, floats,
booleans, lists of strings) so they can be filtered on. Other values live only inside the
serialised node: they come back on reads but can't be filtered on.

A query answers at most the server's `max_top_k` (1,000 by default) hits, so operations that
must see every matching node (`delete(ref_doc_id)`, `delete_nodes`/`get_nodes` by filter,
`clear`) page: deletes repeat query-then-delete until nothing matches, reads exclude the node
ids already seen (up to about 250 pages of `page_size` nodes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from bulkhead import Hit, Record
from bulkhead import filters as bf
from bulkhead.errors import AlreadyExists, NotFound

if TYPE_CHECKING:
    from bulkhead import AsyncTenantHandle, Collection, TenantHandle
    from bulkhead.v1 import Filter

CONTENT_KEY = "li_node_content"
TYPE_KEY = "li_node_type"
NODE_ID_KEY = "li_node_id"
_OWN_FIELDS = {"ref_doc_id": "keyword", "doc_id": "keyword", NODE_ID_KEY: "keyword"}
_MAX_KEYS = 64
_IN_LIMIT = 1000
_INT64 = (-(2**63), 2**63 - 1)


def _storable(value: Any) -> bool:
    if isinstance(value, bool) or isinstance(value, (str, float)):
        return True
    if isinstance(value, int):
        return _INT64[0] <= value <= _INT64[1]
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _all(*parts: Filter | None) -> Filter | None:
    present = [p for p in parts if p is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else bf.all_(*present)


def _in(field: str, values: Sequence[Any]) -> Filter:
    if not values:
        raise ValueError(f"an IN/NIN filter on {field!r} needs at least one value")
    chunks = [list(values[i : i + _IN_LIMIT]) for i in range(0, len(values), _IN_LIMIT)]
    if len(chunks) == 1:
        return bf.in_(field, chunks[0])
    return bf.any_(*[bf.in_(field, c) for c in chunks])


class BulkheadVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store on the collection `collection` of a Bulkhead tenant handle.

    Args:
        tenant: a `bulkhead` tenant handle (`Client(...).tenant(id, api_key=...)`).
        collection: the collection id inside that tenant.
        async_tenant: optionally the same tenant through `AsyncClient`, for the async methods
            (without it they run the sync ones in a thread).
        indexed_fields: metadata keys to make filterable, with their types (`keyword`,
            `integer`, `float`, `bool`), for a collection created here. An existing collection
            must already index them.
        dimension: the embedding dimension; without it a missing collection is created on the
            first `add`, with the dimension of the first node's embedding.
        metric: `cosine` (default), `dot` or `l2`, for a collection created here.
        create_collection_if_missing: create the collection when the tenant has none of that
            id (otherwise `NotFound` is raised).
        default_ttl_seconds: default record TTL of a collection created here.
        page_size: hits per query when paging through all matching nodes (at most the
            server's `max_top_k`).

    Similarities in query results are the server's scores: cosine similarity, dot product,
    or for `l2` the euclidean distance (lower is closer).
    """

    stores_text: bool = True
    flat_metadata: bool = False
    collection: str
    indexed_fields: dict[str, str]
    metric: str = "cosine"
    dimension: int | None = None
    default_ttl_seconds: int | None = None
    page_size: int = 1000

    _tenant: Any = PrivateAttr()
    _async_tenant: Any = PrivateAttr(default=None)
    _exists: bool = PrivateAttr(default=False)

    def __init__(
        self,
        tenant: TenantHandle,
        collection: str,
        *,
        async_tenant: AsyncTenantHandle | None = None,
        indexed_fields: dict[str, str] | None = None,
        dimension: int | None = None,
        metric: str = "cosine",
        create_collection_if_missing: bool = True,
        default_ttl_seconds: int | None = None,
        page_size: int = 1000,
    ) -> None:
        wanted = {k: v.lower() for k, v in (indexed_fields or {}).items()}
        wanted.update(_OWN_FIELDS)
        super().__init__(
            stores_text=True,
            collection=collection,
            indexed_fields=wanted,
            metric=metric.lower(),
            dimension=dimension,
            default_ttl_seconds=default_ttl_seconds,
            page_size=page_size,
        )
        self._tenant = tenant
        self._async_tenant = async_tenant
        declared = set(indexed_fields or {})
        try:
            self._adopt(tenant.get_collection(collection), declared)
        except NotFound:
            if not create_collection_if_missing:
                raise
            if dimension is not None:
                self._create(dimension)

    @classmethod
    def class_name(cls) -> str:
        return "BulkheadVectorStore"

    @property
    def client(self) -> Any:
        """The tenant handle."""
        return self._tenant

    # ---- the collection ------------------------------------------------------------------

    def _adopt(self, info: Collection, declared: set[str] | None = None) -> None:
        fields = {k: str(v).lower() for k, v in info.indexed_fields.items()}
        missing = sorted((declared or set()) - set(fields))
        if missing:
            raise ValueError(
                f"collection {self.collection!r} exists without the indexed fields {missing}; "
                "indexed fields are fixed when a collection is created"
            )
        self.indexed_fields = fields
        self.metric = info.metric.lower()
        self.dimension = info.dimension
        self._exists = True

    def _create_kwargs(self) -> dict[str, Any]:
        return {
            "indexed_fields": self.indexed_fields,
            "default_ttl_seconds": self.default_ttl_seconds,
        }

    def _create(self, dimension: int) -> None:
        try:
            info = self._tenant.create_collection(
                self.collection, dimension, self.metric, **self._create_kwargs()
            )
        except AlreadyExists:
            info = self._tenant.get_collection(self.collection)
        self._adopt(info)

    async def _acreate(self, dimension: int) -> None:
        try:
            info = await self._async_tenant.create_collection(
                self.collection, dimension, self.metric, **self._create_kwargs()
            )
        except AlreadyExists:
            info = await self._async_tenant.get_collection(self.collection)
        self._adopt(info)

    def _ready(self) -> bool:
        """Whether the collection exists (it may have been created since this store was)."""
        if not self._exists:
            try:
                self._adopt(self._tenant.get_collection(self.collection))
            except NotFound:
                return False
        return True

    async def _aready(self) -> bool:
        if not self._exists:
            try:
                self._adopt(await self._async_tenant.get_collection(self.collection))
            except NotFound:
                return False
        return True

    def _require(self, field: str, purpose: str) -> None:
        if field not in self.indexed_fields:
            raise ValueError(
                f"{purpose} needs the indexed field {field!r}, which collection "
                f"{self.collection!r} lacks (it wasn't created by this store)"
            )

    # ---- nodes <-> records ---------------------------------------------------------------

    def _record(self, node: BaseNode) -> Record:
        meta = node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata)
        stored: dict[str, Any] = {
            CONTENT_KEY: meta.pop("_node_content"),
            TYPE_KEY: meta.pop("_node_type"),
            NODE_ID_KEY: node.node_id,
        }
        # indexed keys first, so the 64-key limit never drops a filterable value
        for key in sorted(meta, key=lambda k: k not in self.indexed_fields):
            value = meta[key]
            if len(stored) >= _MAX_KEYS:
                break
            if not key.startswith("_") and key not in stored and _storable(value):
                stored[key] = value
        return Record(
            id=node.node_id,
            vector=node.get_embedding(),
            text=node.get_content(metadata_mode=MetadataMode.NONE),
            metadata=stored,
        )

    @staticmethod
    def _node(item: Hit | Record, with_embedding: bool = False) -> BaseNode:
        meta = dict(item.metadata or {})
        content = meta.pop(CONTENT_KEY, None)
        node_type = meta.pop(TYPE_KEY, None)
        node: BaseNode
        if content is None:  # a record written by something else (e.g. `bulkhead import`)
            node = TextNode(id_=item.id, text=item.text or "", metadata=meta)
        else:
            node = metadata_dict_to_node(
                {"_node_content": content, "_node_type": node_type}, text=item.text
            )
        if with_embedding and item.vector is not None:
            node.embedding = [float(x) for x in item.vector]
        return node

    # ---- filters -------------------------------------------------------------------------

    def _coerce(self, key: str, value: Any) -> Any:
        kind = self.indexed_fields.get(key)
        if isinstance(value, list):
            return [self._coerce(key, v) for v in value]
        if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind == "integer" and isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    def _condition(self, f: MetadataFilter) -> Filter:
        key, op, value = f.key, f.operator, self._coerce(f.key, f.value)
        if op == FilterOperator.EQ or op == FilterOperator.CONTAINS:
            return bf.eq(key, value)
        if op == FilterOperator.NE:
            return bf.not_(bf.eq(key, value))
        if op == FilterOperator.GT:
            return bf.range(key, gt=value)
        if op == FilterOperator.GTE:
            return bf.range(key, gte=value)
        if op == FilterOperator.LT:
            return bf.range(key, lt=value)
        if op == FilterOperator.LTE:
            return bf.range(key, lte=value)
        if op in (FilterOperator.IN, FilterOperator.ANY):
            return _in(key, value)
        if op == FilterOperator.NIN:
            return bf.not_(_in(key, value))
        if op == FilterOperator.ALL:
            return bf.all_(*[bf.eq(key, v) for v in value])
        if op == FilterOperator.IS_EMPTY:
            return bf.not_(bf.exists(key))
        raise ValueError(f"filter operator {op.value!r} is not supported by Bulkhead")

    def _filters(self, mf: MetadataFilters) -> Filter | None:
        parts = [
            self._filters(f) if isinstance(f, MetadataFilters) else self._condition(f)
            for f in mf.filters
        ]
        present = [p for p in parts if p is not None]
        if not present:
            return None
        condition = mf.condition or FilterCondition.AND
        if condition == FilterCondition.AND:
            return _all(*present)
        if condition == FilterCondition.OR:
            return bf.any_(*present)
        if condition == FilterCondition.NOT:
            return bf.not_(*present)
        raise ValueError(f"filter condition {condition!r} is not supported")

    def _user_filter(self, mf: MetadataFilters | None) -> Filter | None:
        return None if mf is None else self._filters(mf)

    def _node_ids_filter(self, node_ids: Sequence[str]) -> Filter:
        self._require(NODE_ID_KEY, "restricting to node ids")
        return _in(NODE_ID_KEY, list(node_ids))

    def _query_filter(self, query: VectorStoreQuery) -> Filter | None:
        """The query's filters, doc_ids and node_ids as one filter. Empty id lists restrict
        nothing, as in the upstream stores: VectorStoreIndex's retriever passes `node_ids=[]`
        for stores that keep the nodes themselves."""
        parts = [self._user_filter(query.filters)]
        if query.doc_ids:
            self._require("ref_doc_id", "restricting to doc_ids")
            parts.append(_in("ref_doc_id", query.doc_ids))
        if query.node_ids:
            parts.append(self._node_ids_filter(query.node_ids))
        return _all(*parts)

    def _probe(self) -> list[float]:
        """A query vector for scans, where only the filter matters."""
        return [1.0] + [0.0] * ((self.dimension or 1) - 1)

    def _page_filter(self, base: Filter | None, seen: list[list[str]]) -> Filter | None:
        if not seen:
            return base
        self._require(NODE_ID_KEY, "paging through more than one page of nodes")
        return _all(base, bf.not_(*[bf.in_(NODE_ID_KEY, s) for s in seen]))

    def _page_kwargs(self, flt: Filter | None, with_vectors: bool) -> dict[str, Any]:
        return {
            "top_k": self.page_size,
            "filter": flt,
            "include_text": with_vectors,
            "include_metadata": with_vectors,
            "include_vector": with_vectors,
        }

    @staticmethod
    def _result(hits: list[Hit]) -> VectorStoreQueryResult:
        return VectorStoreQueryResult(
            nodes=[BulkheadVectorStore._node(h) for h in hits],
            similarities=[h.score for h in hits],
            ids=[h.id for h in hits],
        )

    # ---- sync ----------------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        if not nodes:
            return []
        records = [self._record(n) for n in nodes]
        if not self._exists and not self._ready():
            self._create(len(records[0].vector))
        self._tenant.upsert(self.collection, records)
        return [n.node_id for n in nodes]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if query.mode != VectorStoreQueryMode.DEFAULT:
            raise ValueError(f"query mode {query.mode.value!r} is not supported by Bulkhead")
        if query.query_embedding is None:
            raise ValueError("Bulkhead queries need query_embedding")
        flt = self._query_filter(query)
        if not self._ready():
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        hits = self._tenant.query(
            self.collection,
            query.query_embedding,
            top_k=query.similarity_top_k,
            filter=flt,
            include_text=True,
            include_metadata=True,
        )
        return self._result(hits)

    def _delete_matching(self, flt: Filter | None) -> None:
        while True:
            hits = self._tenant.query(
                self.collection, self._probe(), **self._page_kwargs(flt, False)
            )
            if not hits:
                return
            self._tenant.delete(self.collection, [h.id for h in hits])

    def _get_matching(self, flt: Filter | None) -> list[BaseNode]:
        nodes: list[BaseNode] = []
        seen: list[list[str]] = []
        while True:
            hits = self._tenant.query(
                self.collection,
                self._probe(),
                **self._page_kwargs(self._page_filter(flt, seen), True),
            )
            if not hits:
                return nodes
            nodes.extend(self._node(h, with_embedding=True) for h in hits)
            seen.append([h.id for h in hits])

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Deletes every node of the document `ref_doc_id`."""
        self._require("ref_doc_id", "delete by ref_doc_id")
        if self._ready():
            self._delete_matching(bf.eq("ref_doc_id", ref_doc_id))

    def get_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
    ) -> list[BaseNode]:
        """The nodes with these ids and/or matching `filters` (all nodes when neither)."""
        if (node_ids is not None and not node_ids) or not self._ready():
            return []
        flt = self._user_filter(filters)
        if node_ids is not None and flt is None:
            records = self._tenant.get(self.collection, list(node_ids))
            return [self._node(r, with_embedding=True) for r in records]
        if node_ids is not None:
            flt = _all(self._node_ids_filter(node_ids), flt)
        return self._get_matching(flt)

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Deletes the nodes with these ids and/or matching `filters`; `clear()` drops all."""
        if node_ids is None and filters is None:
            raise ValueError("delete_nodes needs node_ids or filters; clear() deletes everything")
        if (node_ids is not None and not node_ids) or not self._ready():
            return
        flt = self._user_filter(filters)
        if node_ids is not None and flt is None:
            self._tenant.delete(self.collection, list(node_ids))
            return
        if node_ids is not None:
            flt = _all(self._node_ids_filter(node_ids), flt)
        self._delete_matching(flt)

    def clear(self) -> None:
        """Deletes every node; the collection and its settings stay."""
        if self._ready():
            self._delete_matching(None)

    # ---- async ---------------------------------------------------------------------------

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        if self._async_tenant is None:
            return await asyncio.to_thread(self.add, nodes)
        if not nodes:
            return []
        records = [self._record(n) for n in nodes]
        if not self._exists and not await self._aready():
            await self._acreate(len(records[0].vector))
        await self._async_tenant.upsert(self.collection, records)
        return [n.node_id for n in nodes]

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if self._async_tenant is None:
            return await asyncio.to_thread(self.query, query)
        if query.mode != VectorStoreQueryMode.DEFAULT:
            raise ValueError(f"query mode {query.mode.value!r} is not supported by Bulkhead")
        if query.query_embedding is None:
            raise ValueError("Bulkhead queries need query_embedding")
        flt = self._query_filter(query)
        if not await self._aready():
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        hits = await self._async_tenant.query(
            self.collection,
            query.query_embedding,
            top_k=query.similarity_top_k,
            filter=flt,
            include_text=True,
            include_metadata=True,
        )
        return self._result(hits)

    async def _adelete_matching(self, flt: Filter | None) -> None:
        while True:
            hits = await self._async_tenant.query(
                self.collection, self._probe(), **self._page_kwargs(flt, False)
            )
            if not hits:
                return
            await self._async_tenant.delete(self.collection, [h.id for h in hits])

    async def _aget_matching(self, flt: Filter | None) -> list[BaseNode]:
        nodes: list[BaseNode] = []
        seen: list[list[str]] = []
        while True:
            hits = await self._async_tenant.query(
                self.collection,
                self._probe(),
                **self._page_kwargs(self._page_filter(flt, seen), True),
            )
            if not hits:
                return nodes
            nodes.extend(self._node(h, with_embedding=True) for h in hits)
            seen.append([h.id for h in hits])

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        if self._async_tenant is None:
            await asyncio.to_thread(self.delete, ref_doc_id)
            return
        self._require("ref_doc_id", "delete by ref_doc_id")
        if await self._aready():
            await self._adelete_matching(bf.eq("ref_doc_id", ref_doc_id))

    async def aget_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
    ) -> list[BaseNode]:
        if self._async_tenant is None:
            return await asyncio.to_thread(self.get_nodes, node_ids, filters)
        if (node_ids is not None and not node_ids) or not await self._aready():
            return []
        flt = self._user_filter(filters)
        if node_ids is not None and flt is None:
            records = await self._async_tenant.get(self.collection, list(node_ids))
            return [self._node(r, with_embedding=True) for r in records]
        if node_ids is not None:
            flt = _all(self._node_ids_filter(node_ids), flt)
        return await self._aget_matching(flt)

    async def adelete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        if self._async_tenant is None:
            await asyncio.to_thread(self.delete_nodes, node_ids, filters)
            return
        if node_ids is None and filters is None:
            raise ValueError("delete_nodes needs node_ids or filters; clear() deletes everything")
        if (node_ids is not None and not node_ids) or not await self._aready():
            return
        flt = self._user_filter(filters)
        if node_ids is not None and flt is None:
            await self._async_tenant.delete(self.collection, list(node_ids))
            return
        if node_ids is not None:
            flt = _all(self._node_ids_filter(node_ids), flt)
        await self._adelete_matching(flt)

    async def aclear(self) -> None:
        if self._async_tenant is None:
            await asyncio.to_thread(self.clear)
            return
        if await self._aready():
            await self._adelete_matching(None)
