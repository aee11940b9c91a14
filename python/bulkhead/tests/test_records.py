"""Round trips through CollectionService and RecordService (Arrow import and export included),
with vectors as lists and as numpy arrays."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest
from conftest import NewTenant

from bulkhead import AdminClient, Client, Collection, Record, TenantHandle
from bulkhead.errors import DeadlineExceeded, InvalidArgument, NotFound
from bulkhead.testing import BulkheadServer


def test_collection_lifecycle(tenant: TenantHandle) -> None:
    created = tenant.create_collection(
        "docs",
        4,
        "dot",
        default_ttl_seconds=3600,
        indexed_fields={"lang": "keyword", "year": "INTEGER", "price": "float", "public": "bool"},
        hnsw={
            "m": 8,
            "ef_construction": 100,
            "ef_search": 32,
            "flat_threshold": 50,
            "quantization": "none",
            "segments": False,
        },
    )
    assert isinstance(created, Collection)
    assert created.name == f"tenants/{tenant.tenant_id}/collections/docs"
    assert (created.collection_id, created.dimension, created.metric) == ("docs", 4, "dot")
    assert created.default_ttl_seconds == 3600
    assert created.indexed_fields == {
        "lang": "keyword",
        "year": "integer",
        "price": "float",
        "public": "bool",
    }
    assert created.hnsw["m"] == 8 and created.hnsw["quantization"] == "none"
    assert created.hnsw["segments"] == "off"
    assert created.index["kind"] == "flat"
    assert isinstance(created.create_time, datetime)

    tenant.create_collection("other", 2, "l2")
    got = tenant.get_collection("docs")
    assert got.record_count == 0 and got.metric == "dot" and got.default_ttl_seconds == 3600
    assert sorted(c.collection_id for c in tenant.list_collections()) == ["docs", "other"]
    assert tenant.get_collection("other").default_ttl_seconds is None

    tenant.delete_collection("other")
    assert [c.collection_id for c in tenant.list_collections()] == ["docs"]
    with pytest.raises(NotFound):
        tenant.get_collection("other")


def test_upsert_get_query_delete(tenant: TenantHandle) -> None:
    tenant.create_collection("docs", 3, indexed_fields={"lang": "keyword"})
    records = [
        Record(
            "doc-1",
            [1.0, 0.0, 0.0],
            text="one",
            metadata={
                "lang": "en",
                "year": 2026,
                "price": 1.5,
                "public": True,
                "tags": ["db", "rag"],
            },
        ),
        Record("doc-2", [0.0, 1.0, 0.0], text="two", metadata={"lang": "de"}, ttl_seconds=600),
        Record("doc-3", [0.0, 0.0, 1.0]),
    ]
    assert tenant.upsert("docs", records) == 3
    assert tenant.get_collection("docs").record_count == 3

    got = tenant.get("docs", ["doc-2", "missing", "doc-1"])
    assert [r.id for r in got] == ["doc-2", "doc-1"]
    two, one = got
    assert one.vector == [1.0, 0.0, 0.0] and one.text == "one"
    assert one.metadata == {
        "lang": "en",
        "year": 2026,
        "price": 1.5,
        "public": True,
        "tags": ["db", "rag"],
    }
    assert one.expire_time is None
    assert two.expire_time is not None and two.expire_time > datetime.now(timezone.utc)
    assert tenant.get("docs", "doc-3")[0].text is None  # a lone id is one id

    hits = tenant.query("docs", [0.9, 0.1, 0.0], top_k=2)
    assert [h.id for h in hits] == ["doc-1", "doc-2"]
    assert hits[0].score > hits[1].score
    assert hits[0].text is None and hits[0].metadata == {} and hits[0].vector is None
    full = tenant.query(
        "docs",
        [0.9, 0.1, 0.0],
        1,
        include_text=True,
        include_metadata=True,
        include_vector=True,
        ef=16,
    )[0]
    assert (full.text, full.metadata["lang"], full.vector) == ("one", "en", [1.0, 0.0, 0.0])
    assert [h.id for h in tenant.query("docs", [1, 0, 0], 5, filter={"lang": "de"})] == ["doc-2"]

    # Upsert replaces by id.
    tenant.upsert("docs", [Record("doc-1", [0.0, 1.0, 1.0], text="replaced")])
    assert tenant.get("docs", ["doc-1"])[0].text == "replaced"

    assert tenant.delete("docs", ["doc-1", "doc-2", "missing"]) == 2
    assert [r.id for r in tenant.get("docs", ["doc-1", "doc-2", "doc-3"])] == ["doc-3"]


def test_numpy_vectors_are_accepted_everywhere(tenant: TenantHandle) -> None:
    tenant.create_collection("docs", 384)
    rng = np.random.default_rng(7)
    base = rng.standard_normal((50, 384)).astype(np.float32)
    as_f64 = base.astype(np.float64)
    records = [Record(f"r{i}", as_f64[i] if i % 2 else base[i]) for i in range(50)]
    assert tenant.upsert("docs", records) == 50
    stored = tenant.get("docs", ["r0", "r1"])
    np.testing.assert_array_equal(np.asarray(stored[0].vector, dtype=np.float32), base[0])
    np.testing.assert_array_equal(np.asarray(stored[1].vector, dtype=np.float32), base[1])
    for i in (3, 10, 42):
        assert tenant.query("docs", base[i], 1)[0].id == f"r{i}"
        assert tenant.query("docs", as_f64[i], 1)[0].id == f"r{i}"
        assert tenant.query("docs", base[i].tolist(), 1)[0].id == f"r{i}"
        assert tenant.query("docs", tuple(base[i].tolist()), 1)[0].id == f"r{i}"
    strided = np.stack([base[5], base[5]], axis=1)[:, 0]
    assert not strided.flags["C_CONTIGUOUS"]
    assert tenant.query("docs", strided, 1)[0].id == "r5"
    with pytest.raises(InvalidArgument, match="1-dimensional"):
        tenant.query("docs", base[:2], 1)
    with pytest.raises(InvalidArgument, match="dimension"):
        tenant.query("docs", base[0][:10], 1)  # refused by the server, naming the dimension


def test_upsert_splits_large_inputs_and_reads_generators(tenant: TenantHandle) -> None:
    tenant.create_collection("docs", 8)
    rows = (Record(f"r{i}", np.full(8, i + 1, dtype=np.float32)) for i in range(1234))
    assert tenant.upsert("docs", rows, batch_records=100) == 1234
    # A small byte budget forces one record per request.
    assert tenant.upsert("docs", [Record(f"b{i}", [1.0] * 8) for i in range(5)], batch_bytes=1) == 5
    assert tenant.get_collection("docs").record_count == 1239
    ids = [f"r{i}" for i in range(1234)]
    assert len(tenant.get("docs", ids)) == 1234  # more ids than one request may carry
    assert tenant.delete("docs", ids) == 1234


def test_a_bad_record_names_itself(tenant: TenantHandle) -> None:
    tenant.create_collection("docs", 3)
    with pytest.raises(InvalidArgument, match="record 1"):
        tenant.upsert("docs", [Record("ok", [1, 2, 3]), Record("bad", [1, 2])])
    with pytest.raises(InvalidArgument, match="metadata"):
        tenant.upsert("docs", [Record("x", [1, 2, 3], metadata={"nested": {"a": 1}})])  # type: ignore[dict-item]


def test_arrow_import_and_export(tenant: TenantHandle) -> None:
    tenant.create_collection("docs", 4, indexed_fields={"lang": "keyword"})
    n = 2500
    vectors = np.random.default_rng(1).random((n, 4), dtype=np.float32)
    table = pa.table(
        {
            "id": [f"id-{i:05d}" for i in range(n)],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), 4),
            "text": [f"text {i}" if i % 3 else None for i in range(n)],
            "metadata": [json.dumps({"lang": "en" if i % 2 else "de", "n": i}) for i in range(n)],
            "ttl_seconds": pa.array([None] * (n - 1) + [3600], type=pa.int64()),
        }
    )
    assert tenant.import_arrow("docs", table) == n
    assert tenant.get_collection("docs").record_count == n
    assert tenant.get("docs", ["id-00007"])[0].metadata == {"lang": "en", "n": 7}
    hits = tenant.query("docs", vectors[8], 1, filter={"lang": "de"}, include_text=True)
    assert (hits[0].id, hits[0].text) == ("id-00008", "text 8")

    reader = tenant.export_arrow("docs", batch_size=1000)
    assert isinstance(reader, pa.RecordBatchReader)
    exported = reader.read_all()
    assert exported.num_rows == n
    assert exported.column_names == ["id", "vector", "text", "metadata", "ttl_seconds"]
    assert exported.column("id").to_pylist() == table.column("id").to_pylist()  # id order
    np.testing.assert_array_equal(
        np.asarray(exported.column("vector").combine_chunks().flatten()).reshape(n, 4), vectors
    )
    assert exported.column("text").to_pylist() == table.column("text").to_pylist()
    assert [json.loads(m) for m in exported.column("metadata").to_pylist()] == [
        json.loads(m) for m in table.column("metadata").to_pylist()
    ]
    assert 0 < exported.column("ttl_seconds")[n - 1].as_py() <= 3600

    # An export re-imports as is, into another collection (batches of a reader, lists of
    # float64 vectors and large strings are converted on the way).
    tenant.create_collection("copy", 4)
    assert tenant.import_arrow("copy", tenant.export_arrow("docs")) == n
    loose = pa.table(
        {
            "id": pa.array(["a", "b"], type=pa.large_string()),
            "vector": pa.array(
                [[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]], type=pa.list_(pa.float64())
            ),
        }
    )
    assert tenant.import_arrow("copy", loose.to_batches()) == 2
    assert tenant.get("copy", ["b"])[0].vector == [4.0, 3.0, 2.0, 1.0]
    empty = pa.table(
        {
            "id": pa.array([], type=pa.string()),
            "vector": pa.array([], type=pa.list_(pa.float32(), 4)),
        }
    )
    assert tenant.import_arrow("copy", empty) == 0

    tenant.create_collection("empty", 4)
    assert tenant.export_arrow("empty").read_all().num_rows == 0


def test_an_import_paced_by_the_write_limit_outlasts_the_call_timeout(
    server: BulkheadServer, admin: AdminClient, new_tenant: NewTenant
) -> None:
    """An import runs under the client's stream timeout, not its per-call one: past the
    tenant's write limit the server paces it (here ~1.5 s at 1 MB/s), and a call deadline of
    0.3 s would cut it off."""
    tenant_id, secret = new_tenant()
    admin.update_tenant(tenant_id, write_bytes_per_second=1_000_000)
    n, dim = 12_000, 32
    vectors = np.random.default_rng(3).random((n, dim), dtype=np.float32)
    table = pa.table(
        {
            "id": [f"r{i:05}" for i in range(n)],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim),
            "text": ["x" * 60] * n,
        }
    )
    assert table.nbytes > 2_000_000
    with Client(server.endpoint, timeout=0.3) as quick:
        tenant = quick.tenant(tenant_id, api_key=secret)
        tenant.create_collection("docs", dim)
        assert tenant.import_arrow("docs", table) == n
    with Client(server.endpoint, timeout=0.3, stream_timeout=0.3) as short:
        with pytest.raises(DeadlineExceeded):
            short.tenant(tenant_id, api_key=secret).import_arrow("docs", table)


def test_a_bad_import_batch_is_refused_naming_it(tenant: TenantHandle) -> None:
    tenant.create_collection("docs", 2)
    vectors = pa.array([[1.0, 2.0], [3.0, 4.0]], type=pa.list_(pa.float32(), 2))
    good = pa.record_batch({"id": ["a", "b"], "vector": vectors, "metadata": ["{}", "{}"]})
    bad = pa.record_batch({"id": ["c", "d"], "vector": vectors, "metadata": ["{}", "not json"]})
    with pytest.raises(InvalidArgument, match="row 1") as info:
        tenant.import_arrow("docs", [good, bad])
    # The batch before it stays applied, and the error says so.
    assert "1 earlier batches (2 records) were imported" in info.value.message
    assert [r.id for r in tenant.get("docs", ["a", "b", "c", "d"])] == ["a", "b"]
    # Batches of different schemas can't share one stream: refused as the second is encoded.
    with pytest.raises(InvalidArgument, match="differ in schema"):
        tenant.import_arrow("docs", [good, bad.drop_columns(["metadata"])])
