"""A LangChain `VectorStore` over one Bulkhead collection of one tenant.

The store is handed a tenant handle (the SDK's `client.tenant(...)`) rather than a client and a
tenant name: the handle can't address any other tenant, so neither can the store, whatever the
retrieval code around it asks for. The async methods use the `AsyncTenantHandle` when one is
given and fall back to LangChain's thread-pool wrappers of the sync methods otherwise.

Scores: `similarity_search_with_score` returns the server's score as it is: cosine similarity,
dot product, or euclidean distance for `l2` (lower is closer). The relevance functions map each
to `[0, 1]` assuming unit-normalised embeddings, where all three agree: `(1 + cos) / 2`, which
is `(1 + dot) / 2` and `1 - l2^2 / 4`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from bulkhead import Hit, Record, filters
from bulkhead.errors import AlreadyExists, NotFound
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from langchain_bulkhead import _metadata

if TYPE_CHECKING:
    from bulkhead import AsyncTenantHandle, TenantHandle
    from bulkhead.v1 import Filter

_METRICS = ("cosine", "dot", "l2")


def _relevance_unit(score: float) -> float:
    return min(1.0, max(0.0, (1.0 + score) / 2.0))


def _relevance_l2(distance: float) -> float:
    return min(1.0, max(0.0, 1.0 - distance * distance / 4.0))


class BulkheadVectorStore(VectorStore):
    """LangChain vector store on the Bulkhead collection `collection` of the handle's tenant.

    Args:
        tenant: a `bulkhead` tenant handle (`Client(...).tenant(id, api_key=...)`).
        collection: the collection id inside that tenant.
        embedding: the LangChain embeddings that turn texts and queries into vectors.
        async_tenant: optionally the same tenant through `AsyncClient(...).tenant(...)`, used
            by the `a*` methods.
        metric: `cosine`, `dot` or `l2`. For an existing collection it must match (or be
            left out); for one created here it defaults to `cosine`.
        create_collection_if_missing: create the collection when it doesn't exist, with the
            dimension of `embedding` (one `embed_query` call) unless `dimension` is given.
        dimension: the vector dimension for a collection created here.
        indexed_fields: metadata fields to index (`keyword`, `integer`, `float` or `bool`) for
            a collection created here; only indexed fields can be used in `filter=`.
        default_ttl_seconds: the default record TTL of a collection created here.
        ef: HNSW search width for queries (0: the collection's default).

    Metadata: values Bulkhead stores natively (strings, 64-bit integers, floats, booleans,
    lists of strings) are stored as they are; any other JSON value (None, nested dicts, lists
    of non-strings) and keys starting with `_` are JSON-encoded together under the metadata key
    `langchain_json` and restored on the way out, so they round-trip but can't be filtered on.
    Values that aren't JSON-serialisable raise `ValueError`.

    Filters (`filter=` of every search) are a `bulkhead.filters.from_dict` dict
    (`{"section": "net", "year": {"$gte": 2020}, "$or": [...]}`) or a `bulkhead.v1.Filter`.
    """

    def __init__(
        self,
        tenant: TenantHandle,
        collection: str,
        embedding: Embeddings,
        *,
        async_tenant: AsyncTenantHandle | None = None,
        metric: str | None = None,
        create_collection_if_missing: bool = False,
        dimension: int | None = None,
        indexed_fields: dict[str, str] | None = None,
        default_ttl_seconds: int | None = None,
        ef: int = 0,
    ) -> None:
        if metric is not None and metric.lower() not in _METRICS:
            raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
        self._tenant = tenant
        self._async_tenant = async_tenant
        self.collection = collection
        self.embedding = embedding
        self.ef = ef
        try:
            info = tenant.get_collection(collection)
        except NotFound:
            if not create_collection_if_missing:
                raise
            dim = dimension or len(embedding.embed_query("dimension probe"))
            try:
                info = tenant.create_collection(
                    collection,
                    dim,
                    (metric or "cosine").lower(),
                    default_ttl_seconds=default_ttl_seconds,
                    indexed_fields=indexed_fields,
                )
            except AlreadyExists:
                info = tenant.get_collection(collection)
        self.metric = info.metric.lower()
        if metric is not None and metric.lower() != self.metric:
            raise ValueError(
                f"collection {collection!r} uses metric {self.metric!r}, not {metric!r}"
            )
        self.dimension = info.dimension

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    # ---- conversions -------------------------------------------------------------------

    @staticmethod
    def _fill_ids(count: int, ids: Sequence[str | None] | None) -> list[str]:
        if ids is None:
            return [str(uuid.uuid4()) for _ in range(count)]
        if len(ids) != count:
            raise ValueError(f"got {len(ids)} ids for {count} texts")
        return [i if i else str(uuid.uuid4()) for i in ids]

    def _records(
        self,
        texts: list[str],
        vectors: list[list[float]],
        metadatas: list[dict[str, Any]] | None,
        ids: list[str],
        ttl_seconds: int | None,
    ) -> list[Record]:
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"got {len(metadatas)} metadatas for {len(texts)} texts")
        return [
            Record(
                id=ids[i],
                vector=vectors[i],
                text=text,
                metadata=_metadata.encode(metadatas[i] if metadatas else {}),
                ttl_seconds=ttl_seconds,
            )
            for i, text in enumerate(texts)
        ]

    @staticmethod
    def _document(item: Hit | Record) -> Document:
        return Document(
            id=item.id,
            page_content=item.text or "",
            metadata=_metadata.decode(item.metadata or {}),
        )

    @staticmethod
    def _filter(filter: dict[str, Any] | Filter | None) -> Filter | None:
        if filter is None or not isinstance(filter, dict):
            return filter
        return filters.from_dict(filter)

    def _query_kwargs(self, k: int, filter: Any, include_vector: bool = False) -> dict[str, Any]:
        return {
            "top_k": k,
            "filter": self._filter(filter),
            "include_text": True,
            "include_metadata": True,
            "include_vector": include_vector,
            "ef": self.ef,
        }

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return _relevance_l2 if self.metric == "l2" else _relevance_unit

    def _mmr(
        self, embedding: list[float], hits: list[Hit], k: int, lambda_mult: float
    ) -> list[Document]:
        if not hits:
            return []
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32),
            [list(h.vector or []) for h in hits],
            lambda_mult=lambda_mult,
            k=min(k, len(hits)),
        )
        return [self._document(hits[i]) for i in chosen]

    # ---- sync ----------------------------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        ttl_seconds: int | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embeds and upserts `texts`; an id given again replaces that record.

        `ids` entries that are None get a random UUID4.
        """
        texts = list(texts)
        ids = self._fill_ids(len(texts), ids)
        if not texts:
            return []
        vectors = self.embedding.embed_documents(texts)
        self._tenant.upsert(
            self.collection, self._records(texts, vectors, metadatas, ids, ttl_seconds)
        )
        return ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Deletes the records `ids` (missing ones are ignored).

        Deleting everything (`ids=None`) is refused: delete the collection through the tenant
        handle instead.
        """
        if ids is None:
            raise ValueError("delete needs ids; to drop everything delete the collection")
        if ids:
            self._tenant.delete(self.collection, ids)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        if not ids:
            return []
        return [self._document(r) for r in self._tenant.get(self.collection, list(ids))]

    def similarity_search_with_score_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | Filter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        hits = self._tenant.query(self.collection, embedding, **self._query_kwargs(k, filter))
        return [(self._document(h), h.score) for h in hits]

    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, filter)]

    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: dict[str, Any] | Filter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        return self.similarity_search_with_score_by_vector(
            self.embedding.embed_query(query), k, filter
        )

    def similarity_search(
        self,
        query: str,
        k: int = 4,
        filter: dict[str, Any] | Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter)]

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        hits = self._tenant.query(
            self.collection, embedding, **self._query_kwargs(fetch_k, filter, True)
        )
        return self._mmr(embedding, hits, k, lambda_mult)

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        return self.max_marginal_relevance_search_by_vector(
            self.embedding.embed_query(query), k, fetch_k, lambda_mult, filter
        )

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        tenant: TenantHandle | None = None,
        collection: str | None = None,
        **kwargs: Any,
    ) -> BulkheadVectorStore:
        """Creates the store (and its collection when missing) and adds `texts`.

        `tenant` and `collection` are required; other keyword arguments go to the constructor.
        """
        if tenant is None or collection is None:
            raise ValueError("from_texts needs tenant= (a bulkhead tenant handle) and collection=")
        kwargs.setdefault("create_collection_if_missing", True)
        store = cls(tenant, collection, embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    # ---- async ---------------------------------------------------------------------------

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        ttl_seconds: int | None = None,
        **kwargs: Any,
    ) -> list[str]:
        if self._async_tenant is None:
            return await run_in_executor(
                None, self.add_texts, texts, metadatas, ids=ids, ttl_seconds=ttl_seconds
            )
        texts = list(texts)
        ids = self._fill_ids(len(texts), ids)
        if not texts:
            return []
        vectors = await self.embedding.aembed_documents(texts)
        await self._async_tenant.upsert(
            self.collection, self._records(texts, vectors, metadatas, ids, ttl_seconds)
        )
        return ids

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        if self._async_tenant is None:
            return await run_in_executor(None, self.delete, ids)
        if ids is None:
            raise ValueError("delete needs ids; to drop everything delete the collection")
        if ids:
            await self._async_tenant.delete(self.collection, ids)
        return True

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        if self._async_tenant is None:
            return await run_in_executor(None, self.get_by_ids, ids)
        if not ids:
            return []
        records = await self._async_tenant.get(self.collection, list(ids))
        return [self._document(r) for r in records]

    async def asimilarity_search_with_score_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | Filter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Async `similarity_search_with_score_by_vector`."""
        if self._async_tenant is None:
            return await run_in_executor(
                None, self.similarity_search_with_score_by_vector, embedding, k, filter
            )
        hits = await self._async_tenant.query(
            self.collection, embedding, **self._query_kwargs(k, filter)
        )
        return [(self._document(h), h.score) for h in hits]

    async def asimilarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        pairs = await self.asimilarity_search_with_score_by_vector(embedding, k, filter)
        return [doc for doc, _ in pairs]

    async def asimilarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: dict[str, Any] | Filter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        return await self.asimilarity_search_with_score_by_vector(
            await self.embedding.aembed_query(query), k, filter
        )

    async def asimilarity_search(
        self,
        query: str,
        k: int = 4,
        filter: dict[str, Any] | Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        pairs = await self.asimilarity_search_with_score(query, k, filter)
        return [doc for doc, _ in pairs]

    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        if self._async_tenant is None:
            return await run_in_executor(
                None,
                self.max_marginal_relevance_search_by_vector,
                embedding,
                k,
                fetch_k,
                lambda_mult,
                filter,
            )
        hits = await self._async_tenant.query(
            self.collection, embedding, **self._query_kwargs(fetch_k, filter, True)
        )
        return self._mmr(embedding, hits, k, lambda_mult)

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        return await self.amax_marginal_relevance_search_by_vector(
            await self.embedding.aembed_query(query), k, fetch_k, lambda_mult, filter
        )
