"""What the standard suite doesn't cover: filters, metadata encoding, scores per metric, MMR,
from_texts, retrievers, and that a store bound to one tenant never sees another's documents."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import pytest
from bulkhead import Client
from bulkhead.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from langchain_core.documents import Document

from conftest import BagOfWords, FixedEmbeddings
from langchain_bulkhead import JSON_KEY, BulkheadVectorStore

DOCS = [
    Document(
        id="n1",
        page_content="curl transfers data over http",
        metadata={"section": "net", "year": 2021, "tags": ["cli", "http"]},
    ),
    Document(
        id="n2",
        page_content="wget downloads files over http",
        metadata={"section": "net", "year": 2018, "tags": ["cli"]},
    ),
    Document(
        id="g1",
        page_content="nethack dungeon game",
        metadata={"section": "games", "year": 2020, "tags": ["roguelike"]},
    ),
    Document(
        id="g2", page_content="frozen bubble game", metadata={"section": "games", "year": 2015}
    ),
]


@pytest.fixture
def filtered_store(tenant, atenant, collection_name: str) -> BulkheadVectorStore:  # type: ignore[no-untyped-def]
    store = BulkheadVectorStore(
        tenant,
        collection_name,
        BagOfWords(),
        async_tenant=atenant,
        create_collection_if_missing=True,
        indexed_fields={"section": "keyword", "year": "integer", "tags": "keyword"},
    )
    store.add_documents(DOCS)
    return store


def ids(docs: list[Document]) -> set[str | None]:
    return {d.id for d in docs}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"section": "net"}, {"n1", "n2"}),
        ({"section": {"$ne": "net"}}, {"g1", "g2"}),
        ({"year": {"$gte": 2020}}, {"n1", "g1"}),
        ({"year": {"$lt": 2018}}, {"g2"}),
        ({"section": "games", "year": {"$gt": 2016}}, {"g1"}),
        ({"$or": [{"year": 2018}, {"year": 2015}]}, {"n2", "g2"}),
        ({"tags": {"$in": ["http", "roguelike"]}}, {"n1", "g1"}),
        ({"tags": {"$nin": ["cli"]}}, {"g1", "g2"}),
    ],
)
def test_filters(filtered_store: BulkheadVectorStore, flt: dict, expected: set[str]) -> None:
    assert ids(filtered_store.similarity_search("http game", k=10, filter=flt)) == expected


async def test_filters_async(filtered_store: BulkheadVectorStore) -> None:
    docs = await filtered_store.asimilarity_search("http", k=10, filter={"section": "net"})
    assert ids(docs) == {"n1", "n2"}
    mmr = await filtered_store.amax_marginal_relevance_search(
        "http", k=1, fetch_k=10, filter={"section": "games"}
    )
    assert ids(mmr) <= {"g1", "g2"} and len(mmr) == 1


def test_filter_on_unindexed_field_is_refused(filtered_store: BulkheadVectorStore) -> None:
    with pytest.raises(InvalidArgument):
        filtered_store.similarity_search("x", k=1, filter={"colour": "red"})


def test_metadata_round_trip(tenant, collection_name: str) -> None:  # type: ignore[no-untyped-def]
    store = BulkheadVectorStore(
        tenant, collection_name, BagOfWords(), create_collection_if_missing=True
    )
    metadata = {
        "plain": "text",
        "n": 3,
        "x": 1.5,
        "ok": True,
        "words": ["a", "b"],
        "none": None,
        "nested": {"a": [1, 2, {"b": None}]},
        "numbers": [1, 2, 3],
        "_private": "kept",
        "huge": 2**70,
        JSON_KEY: "a user value under the reserved name",
    }
    store.add_documents([Document(id="m", page_content="metadata", metadata=metadata)])
    assert store.get_by_ids(["m"]) == [Document(id="m", page_content="metadata", metadata=metadata)]
    # natively storable values stay plain metadata on the server (so they can be indexed)
    (record,) = tenant.get(collection_name, ["m"])
    assert record.metadata["n"] == 3 and record.metadata["words"] == ["a", "b"]
    assert "none" not in record.metadata and JSON_KEY in record.metadata


def test_metadata_that_is_not_json_is_refused(tenant, collection_name: str) -> None:  # type: ignore[no-untyped-def]
    store = BulkheadVectorStore(
        tenant, collection_name, BagOfWords(), create_collection_if_missing=True
    )
    with pytest.raises(ValueError, match="when"):
        store.add_texts(["t"], [{"when": dt.datetime.now()}])


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_scores_and_relevance_per_metric(tenant, collection_name: str, metric: str) -> None:  # type: ignore[no-untyped-def]
    emb = FixedEmbeddings({"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [-1.0, 0.0]})
    store = BulkheadVectorStore(
        tenant, collection_name, emb, metric=metric, create_collection_if_missing=True, dimension=2
    )
    store.add_texts(["a", "b", "c"], ids=["a", "b", "c"])
    scored = {d.id: s for d, s in store.similarity_search_with_score("a", k=3)}
    raw = {"cosine": (1.0, 0.0, -1.0), "dot": (1.0, 0.0, -1.0), "l2": (0.0, math.sqrt(2), 2.0)}
    for key, want in zip("abc", raw[metric], strict=True):
        assert scored[key] == pytest.approx(want, abs=1e-5)
    relevance = {d.id: r for d, r in store.similarity_search_with_relevance_scores("a", k=3)}
    assert relevance["a"] == pytest.approx(1.0, abs=1e-5)
    assert relevance["b"] == pytest.approx(0.5, abs=1e-5)
    assert relevance["c"] == pytest.approx(0.0, abs=1e-5)


def test_metric_mismatch_and_missing_collection(tenant, collection_name: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound):
        BulkheadVectorStore(tenant, collection_name, BagOfWords())
    BulkheadVectorStore(
        tenant, collection_name, BagOfWords(), metric="l2", create_collection_if_missing=True
    )
    with pytest.raises(ValueError, match="l2"):
        BulkheadVectorStore(tenant, collection_name, BagOfWords(), metric="cosine")
    assert BulkheadVectorStore(tenant, collection_name, BagOfWords()).metric == "l2"


def test_max_marginal_relevance(tenant, collection_name: str) -> None:  # type: ignore[no-untyped-def]
    emb = FixedEmbeddings(
        {
            "q": [1.0, 0.0, 0.0],
            "best": [0.99, 0.14, 0.0],
            "near-duplicate": [0.99, 0.15, 0.0],
            "different": [0.8, 0.0, 0.6],
        }
    )
    store = BulkheadVectorStore(
        tenant, collection_name, emb, create_collection_if_missing=True, dimension=3
    )
    store.add_texts(["best", "near-duplicate", "different"], ids=["best", "dup", "diff"])
    assert [d.id for d in store.similarity_search("q", k=2)] == ["best", "dup"]
    mmr = store.max_marginal_relevance_search("q", k=2, fetch_k=3, lambda_mult=0.25)
    assert [d.id for d in mmr] == ["best", "diff"]


def test_from_texts_and_retriever(tenant, collection_name: str) -> None:  # type: ignore[no-untyped-def]
    store = BulkheadVectorStore.from_texts(
        ["apt installs packages", "dpkg unpacks archives"],
        BagOfWords(),
        metadatas=[{"tool": "apt"}, {"tool": "dpkg"}],
        ids=["apt", "dpkg"],
        tenant=tenant,
        collection=collection_name,
    )
    retriever = store.as_retriever(search_kwargs={"k": 1})
    (doc,) = retriever.invoke("which tool unpacks archives")
    assert doc.id == "dpkg" and doc.metadata == {"tool": "dpkg"}


def test_delete_everything_is_refused(tenant, collection_name: str) -> None:  # type: ignore[no-untyped-def]
    store = BulkheadVectorStore(
        tenant, collection_name, BagOfWords(), create_collection_if_missing=True
    )
    with pytest.raises(ValueError):
        store.delete()


def test_store_of_one_tenant_never_returns_anothers_documents(
    client: Client, new_tenant: Callable[[str], tuple[str, str]]
) -> None:
    (a_id, a_key), (b_id, b_key) = new_tenant("lc-a"), new_tenant("lc-b")
    a = BulkheadVectorStore(
        client.tenant(a_id, api_key=a_key), "docs", BagOfWords(), create_collection_if_missing=True
    )
    b = BulkheadVectorStore(
        client.tenant(b_id, api_key=b_key), "docs", BagOfWords(), create_collection_if_missing=True
    )
    a.add_texts(["alpha public note", "alpha roadmap"], ids=["a-1", "a-2"])
    b.add_texts(["beta secret roadmap", "beta payroll"], ids=["b-1", "b-2"])

    seen = a.similarity_search("beta secret roadmap payroll", k=10)
    assert ids(seen) == {"a-1", "a-2"}
    assert a.get_by_ids(["b-1", "b-2"]) == []
    a.delete(["b-1", "b-2"])  # ids of B through A's store: nothing of B goes
    assert ids(b.get_by_ids(["b-1", "b-2"])) == {"b-1", "b-2"}
    # and A's key can't open a store on B
    with pytest.raises((PermissionDenied, Unauthenticated)):
        BulkheadVectorStore(client.tenant(b_id, api_key=a_key), "docs", BagOfWords())
