"""Modelled on the upstream LlamaIndex vector-store tests (add, query with filters, delete by
ref doc, get/delete nodes, clear, async), run against a real server."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from bulkhead import Client, Record
from bulkhead.errors import NotFound
from llama_index.core import Document, MockEmbedding, StorageContext, VectorStoreIndex
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

from llama_index.vector_stores.bulkhead import BulkheadVectorStore

FIELDS = {
    "author": "keyword",
    "theme": "keyword",
    "year": "integer",
    "rating": "float",
    "tags": "keyword",
}


def source(doc_id: str) -> dict:
    return {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc_id)}


def make_nodes() -> list[TextNode]:
    return [
        TextNode(
            id_="n1",
            text="the body in the woods",
            embedding=[1.0, 0.0, 0.0],
            metadata={"author": "Stephen King", "theme": "Friendship", "year": 1986, "rating": 4.5},
            relationships=source("doc-a"),
        ),
        TextNode(
            id_="n2",
            text="an offer he can't refuse",
            embedding=[0.0, 1.0, 0.0],
            metadata={"author": "Mario Puzo", "theme": "Mafia", "year": 1969, "rating": 3.0},
            relationships=source("doc-a"),
        ),
        TextNode(
            id_="n3",
            text="a mockingbird in the courtroom",
            embedding=[0.0, 0.0, 1.0],
            metadata={
                "author": "Harper Lee",
                "theme": "Fiction",
                "year": 1960,
                "tags": ["classic", "law"],
            },
            relationships=source("doc-b"),
        ),
        TextNode(
            id_="n4",
            text="a boy wizard",
            embedding=[1.0, 1.0, 0.0],
            metadata={"author": "J.K. Rowling", "theme": "Fiction", "year": 1997, "rating": 5.0},
        ),
    ]


@pytest.fixture
def vector_store(tenant, atenant, collection_name: str) -> BulkheadVectorStore:  # type: ignore[no-untyped-def]
    store = BulkheadVectorStore(
        tenant, collection_name, async_tenant=atenant, indexed_fields=FIELDS
    )
    store.add(make_nodes())
    return store


def ids_of(store: BulkheadVectorStore, **query: object) -> set[str]:
    result = store.query(
        VectorStoreQuery(query_embedding=[1.0, 0.5, 0.2], similarity_top_k=10, **query)
    )  # type: ignore[arg-type]
    return set(result.ids or [])


def test_class() -> None:
    assert BasePydanticVectorStore in BulkheadVectorStore.__mro__


def test_add_and_query(vector_store: BulkheadVectorStore) -> None:
    result = vector_store.query(
        VectorStoreQuery(query_embedding=[1.0, 0.0, 0.0], similarity_top_k=2)
    )
    assert result.ids == ["n1", "n4"]
    assert result.similarities == pytest.approx([1.0, 1 / math.sqrt(2)], abs=1e-5)
    first = result.nodes[0]
    assert first.node_id == "n1" and first.get_content() == "the body in the woods"
    assert first.metadata == make_nodes()[0].metadata
    assert first.ref_doc_id == "doc-a"


def f(key: str, value: object, op: FilterOperator = FilterOperator.EQ) -> MetadataFilter:
    return MetadataFilter(key=key, value=value, operator=op)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (MetadataFilters(filters=[f("author", "Stephen King")]), {"n1"}),
        (MetadataFilters(filters=[f("theme", "Fiction", FilterOperator.NE)]), {"n1", "n2"}),
        (MetadataFilters(filters=[f("year", 1969, FilterOperator.GT)]), {"n1", "n4"}),
        (MetadataFilters(filters=[f("year", 1969, FilterOperator.GTE)]), {"n1", "n2", "n4"}),
        (MetadataFilters(filters=[f("year", 1969, FilterOperator.LT)]), {"n3"}),
        (MetadataFilters(filters=[f("year", 1969, FilterOperator.LTE)]), {"n2", "n3"}),
        (
            MetadataFilters(filters=[f("rating", 4, FilterOperator.GTE)]),
            {"n1", "n4"},
        ),  # int on a float field
        (
            MetadataFilters(filters=[f("theme", ["Mafia", "Friendship"], FilterOperator.IN)]),
            {"n1", "n2"},
        ),
        (
            MetadataFilters(filters=[f("theme", ["Mafia", "Friendship"], FilterOperator.NIN)]),
            {"n3", "n4"},
        ),
        (MetadataFilters(filters=[f("tags", "law", FilterOperator.CONTAINS)]), {"n3"}),
        (MetadataFilters(filters=[f("rating", None, FilterOperator.IS_EMPTY)]), {"n3"}),
        (
            MetadataFilters(
                filters=[f("theme", "Fiction"), f("year", 1990, FilterOperator.GT)],
                condition=FilterCondition.AND,
            ),
            {"n4"},
        ),
        (
            MetadataFilters(
                filters=[f("author", "Harper Lee"), f("rating", 4.0, FilterOperator.GT)],
                condition=FilterCondition.OR,
            ),
            {"n1", "n3", "n4"},
        ),
        (
            MetadataFilters(
                filters=[
                    f("theme", "Fiction"),
                    MetadataFilters(filters=[f("year", 1997)], condition=FilterCondition.NOT),
                ],
                condition=FilterCondition.AND,
            ),
            {"n3"},
        ),
    ],
)
def test_query_with_filters(
    vector_store: BulkheadVectorStore, filters: MetadataFilters, expected: set[str]
) -> None:
    assert ids_of(vector_store, filters=filters) == expected


def test_query_doc_ids_and_node_ids(vector_store: BulkheadVectorStore) -> None:
    assert ids_of(vector_store, doc_ids=["doc-a"]) == {"n1", "n2"}
    assert ids_of(vector_store, node_ids=["n2", "n3", "missing"]) == {"n2", "n3"}
    assert ids_of(vector_store, doc_ids=["doc-a"], node_ids=["n2", "n3"]) == {"n2"}
    # empty id lists restrict nothing (VectorStoreIndex's retriever passes node_ids=[])
    assert ids_of(vector_store, node_ids=[], doc_ids=[]) == {"n1", "n2", "n3", "n4"}
    assert vector_store.get_nodes(node_ids=[]) == []
    vector_store.delete_nodes(node_ids=[])
    assert (
        ids_of(vector_store, doc_ids=["doc-b"], filters=MetadataFilters(filters=[f("year", 2000)]))
        == set()
    )


def test_unsupported_operator_is_refused(vector_store: BulkheadVectorStore) -> None:
    with pytest.raises(ValueError, match="text_match"):
        ids_of(
            vector_store,
            filters=MetadataFilters(filters=[f("author", "King", FilterOperator.TEXT_MATCH)]),
        )


def test_delete_by_ref_doc(vector_store: BulkheadVectorStore) -> None:
    vector_store.delete("doc-a")
    assert ids_of(vector_store) == {"n3", "n4"}
    vector_store.delete("no-such-doc")
    assert ids_of(vector_store) == {"n3", "n4"}


def test_get_nodes(vector_store: BulkheadVectorStore) -> None:
    nodes = vector_store.get_nodes(node_ids=["n1", "n3", "missing"])
    assert {n.node_id for n in nodes} == {"n1", "n3"}
    assert all(n.embedding is not None for n in nodes)
    by_filter = vector_store.get_nodes(filters=MetadataFilters(filters=[f("theme", "Fiction")]))
    assert {n.node_id for n in by_filter} == {"n3", "n4"}
    both = vector_store.get_nodes(
        node_ids=["n1", "n3"], filters=MetadataFilters(filters=[f("theme", "Fiction")])
    )
    assert [n.node_id for n in both] == ["n3"]
    assert {n.node_id for n in vector_store.get_nodes()} == {"n1", "n2", "n3", "n4"}


def test_delete_nodes(vector_store: BulkheadVectorStore) -> None:
    vector_store.delete_nodes(node_ids=["n1"])
    assert ids_of(vector_store) == {"n2", "n3", "n4"}
    vector_store.delete_nodes(filters=MetadataFilters(filters=[f("theme", "Fiction")]))
    assert ids_of(vector_store) == {"n2"}
    vector_store.delete_nodes(
        node_ids=["n2"], filters=MetadataFilters(filters=[f("theme", "Fiction")])
    )
    assert ids_of(vector_store) == {"n2"}
    with pytest.raises(ValueError, match="clear"):
        vector_store.delete_nodes()


def test_clear(vector_store: BulkheadVectorStore, tenant) -> None:  # type: ignore[no-untyped-def]
    vector_store.clear()
    assert ids_of(vector_store) == set()
    assert vector_store.get_nodes() == []
    # the collection (and its indexed fields) stays
    assert "author" in tenant.get_collection(vector_store.collection).indexed_fields


def test_paging_past_one_page(tenant, collection_name: str) -> None:  # type: ignore[no-untyped-def]
    store = BulkheadVectorStore(tenant, collection_name, indexed_fields=FIELDS, page_size=3)
    nodes = [
        TextNode(
            id_=f"p{i}",
            text=f"page {i}",
            embedding=[1.0, float(i), 0.5],
            metadata={"theme": "paged"},
            relationships=source("big-doc"),
        )
        for i in range(10)
    ]
    store.add(nodes)
    assert len(store.get_nodes(filters=MetadataFilters(filters=[f("theme", "paged")]))) == 10
    assert len(store.get_nodes()) == 10
    store.delete("big-doc")
    assert store.get_nodes() == []


def test_metadata_bulkhead_cannot_store_round_trips(tenant, collection_name: str) -> None:  # type: ignore[no-untyped-def]
    store = BulkheadVectorStore(tenant, collection_name, indexed_fields=FIELDS)
    metadata = {
        "author": "Anon",
        "nothing": None,
        "numbers": [1, 2],
        "nested": {"a": {"b": 1}},
        "_private": "x",
    }
    store.add(
        [TextNode(id_="m", text="odd metadata", embedding=[0.3, 0.3, 0.3], metadata=metadata)]
    )
    (node,) = store.get_nodes(node_ids=["m"])
    assert node.metadata == metadata
    (record,) = tenant.get(collection_name, ["m"])
    assert record.metadata["author"] == "Anon" and "nested" not in record.metadata


def test_collection_is_created_on_first_add(tenant, collection_name: str) -> None:  # type: ignore[no-untyped-def]
    store = BulkheadVectorStore(tenant, collection_name, indexed_fields=FIELDS, metric="l2")
    with pytest.raises(NotFound):
        tenant.get_collection(collection_name)
    assert ids_of(store) == set()
    assert store.get_nodes() == []
    store.add(make_nodes())
    info = tenant.get_collection(collection_name)
    assert info.dimension == 3 and info.metric.lower() == "l2"
    result = store.query(VectorStoreQuery(query_embedding=[1.0, 0.0, 0.0], similarity_top_k=1))
    assert result.ids == ["n1"] and result.similarities == pytest.approx([0.0], abs=1e-6)
    with pytest.raises(NotFound):
        BulkheadVectorStore(tenant, collection_name + "-x", create_collection_if_missing=False)
    with pytest.raises(ValueError, match="genre"):
        BulkheadVectorStore(tenant, collection_name, indexed_fields={"genre": "keyword"})


def test_records_written_by_others_read_as_text_nodes(tenant, collection_name: str) -> None:  # type: ignore[no-untyped-def]
    store = BulkheadVectorStore(tenant, collection_name, dimension=3)
    tenant.upsert(
        collection_name,
        [Record(id="raw", vector=[1.0, 0.0, 0.0], text="imported", metadata={"package": "curl"})],
    )
    (node,) = (
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0, 0.0], similarity_top_k=1)).nodes
        or []
    )
    assert (
        isinstance(node, TextNode)
        and node.text == "imported"
        and node.metadata == {"package": "curl"}
    )


def test_index_round_trip(tenant, collection_name: str) -> None:  # type: ignore[no-untyped-def]
    store = BulkheadVectorStore(tenant, collection_name)
    index = VectorStoreIndex.from_documents(
        [
            Document(text="bulkhead keeps tenants apart", id_="d1"),
            Document(text="another doc", id_="d2"),
        ],
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=MockEmbedding(embed_dim=8),
    )
    retrieved = index.as_retriever(similarity_top_k=5).retrieve("tenants")
    assert {n.node.ref_doc_id for n in retrieved} == {"d1", "d2"}
    index.delete_ref_doc("d1")
    retrieved = index.as_retriever(similarity_top_k=5).retrieve("tenants")
    assert {n.node.ref_doc_id for n in retrieved} == {"d2"}


def test_store_of_one_tenant_never_sees_anothers_nodes(
    client: Client, new_tenant: Callable[[str], tuple[str, str]]
) -> None:
    (a_id, a_key), (b_id, b_key) = new_tenant("li-a"), new_tenant("li-b")
    a = BulkheadVectorStore(client.tenant(a_id, api_key=a_key), "docs", indexed_fields=FIELDS)
    b = BulkheadVectorStore(client.tenant(b_id, api_key=b_key), "docs", indexed_fields=FIELDS)
    nodes = make_nodes()
    a.add(nodes[:2])
    b.add(nodes[2:])
    assert ids_of(a) == {"n1", "n2"} and ids_of(b) == {"n3", "n4"}
    assert a.get_nodes(node_ids=["n3", "n4"]) == []
    a.delete("doc-b")
    a.delete_nodes(node_ids=["n3", "n4"])
    a.clear()
    assert ids_of(b) == {"n3", "n4"}


async def test_async_variants(tenant, atenant, collection_name: str) -> None:  # type: ignore[no-untyped-def]
    store = BulkheadVectorStore(
        tenant, collection_name, async_tenant=atenant, indexed_fields=FIELDS
    )
    assert await store.async_add(make_nodes()) == ["n1", "n2", "n3", "n4"]
    result = await store.aquery(
        VectorStoreQuery(
            query_embedding=[1.0, 0.0, 0.0],
            similarity_top_k=5,
            filters=MetadataFilters(filters=[f("year", 1969, FilterOperator.GT)]),
        )
    )
    assert result.ids == ["n1", "n4"]
    assert {n.node_id for n in await store.aget_nodes(node_ids=["n2", "n3"])} == {"n2", "n3"}
    assert {
        n.node_id
        for n in await store.aget_nodes(filters=MetadataFilters(filters=[f("theme", "Fiction")]))
    } == {"n3", "n4"}
    await store.adelete("doc-a")
    assert {n.node_id for n in await store.aget_nodes()} == {"n3", "n4"}
    await store.adelete_nodes(node_ids=["n3"])
    assert {n.node_id for n in await store.aget_nodes()} == {"n4"}
    await store.async_add(make_nodes())
    await store.adelete_nodes(filters=MetadataFilters(filters=[f("author", "Harper Lee")]))
    assert {n.node_id for n in await store.aget_nodes()} == {"n1", "n2", "n4"}
    await store.aclear()
    assert await store.aget_nodes() == []


async def test_async_without_async_handle(tenant, collection_name: str) -> None:  # type: ignore[no-untyped-def]
    store = BulkheadVectorStore(tenant, collection_name, indexed_fields=FIELDS)
    await store.async_add(make_nodes())
    result = await store.aquery(
        VectorStoreQuery(query_embedding=[0.0, 0.0, 1.0], similarity_top_k=1)
    )
    assert result.ids == ["n3"]
    await store.adelete("doc-b")
    await store.aclear()
    assert await store.aget_nodes() == []
