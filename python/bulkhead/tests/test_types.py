"""Conversions that need no server: vectors, metadata, endpoints, the retry schedule."""

from __future__ import annotations

import numpy as np
import pytest

from bulkhead._call import Policy
from bulkhead._channel import TlsConfig, resolve
from bulkhead.errors import InvalidArgument
from bulkhead.types import Record, metadata_from_pb, metadata_to_pb, record_to_pb, vector_field
from bulkhead.v1 import QueryRequest


def test_vectors_of_every_accepted_form_encode_alike() -> None:
    values = [0.5, -1.25, 3.0]
    expected = QueryRequest(vector=values).SerializeToString()
    for vector in (
        values,
        tuple(values),
        np.array(values, dtype=np.float32),
        np.array(values, dtype=np.float64),
        np.array(values, dtype=">f4"),  # big-endian input is converted
        np.array([[0.5, 9.0], [-1.25, 9.0], [3.0, 9.0]], dtype=np.float32)[:, 0],  # strided
    ):
        message = QueryRequest()
        message.MergeFromString(vector_field(vector))
        assert message.SerializeToString() == expected, vector
    big = np.arange(384, dtype=np.float32)
    message = QueryRequest()
    message.MergeFromString(vector_field(big))
    assert list(message.vector) == big.tolist()
    with pytest.raises(InvalidArgument, match="1-dimensional"):
        vector_field(np.zeros((2, 2)))
    with pytest.raises(InvalidArgument):
        record_to_pb(Record("r", ["a", "b"]))  # type: ignore[list-item]


def test_metadata_round_trips_with_its_types() -> None:
    metadata = {
        "s": "x",
        "i": 7,
        "f": 1.5,
        "b": False,
        "l": ["a", "b"],
        "n": np.int64(3),
        "nb": np.bool_(True),
        "nf": np.float32(0.5),
    }
    back = metadata_from_pb(metadata_to_pb(metadata))
    assert back == {
        "s": "x",
        "i": 7,
        "f": 1.5,
        "b": False,
        "l": ["a", "b"],
        "n": 3,
        "nb": True,
        "nf": 0.5,
    }
    assert type(back["b"]) is bool and type(back["i"]) is int and type(back["n"]) is int
    for bad in ({"d": {"a": 1}}, {"l": ["a", 1]}, {"none": None}, {"bytes": b"x"}):
        with pytest.raises(InvalidArgument, match="metadata"):
            metadata_to_pb(bad)


def test_endpoints_and_tls() -> None:
    assert (resolve("127.0.0.1:7600", None).address, resolve("127.0.0.1:7600", None).tls) == (
        "127.0.0.1:7600",
        None,
    )
    assert resolve("http://host:1/", None).address == "host:1"
    https = resolve("https://host:1", None)
    assert https.address == "host:1" and https.tls == TlsConfig()
    assert resolve("host:1", True).tls == TlsConfig()
    named = resolve("host:1", TlsConfig(server_name="db.internal"))
    assert ("grpc.ssl_target_name_override", "db.internal") in named.options
    for endpoint, tls in (
        ("http://h:1", True),
        ("https://h:1", False),
        ("h:1/x", None),
        ("", None),
    ):
        with pytest.raises(InvalidArgument):
            resolve(endpoint, tls)


def test_retry_pauses_double_with_jitter_up_to_the_cap() -> None:
    policy = Policy(max_attempts=8, initial_backoff=0.05, max_backoff=2.0)
    for _ in range(100):
        pauses = list(policy.pauses())
        assert len(pauses) == 7
        for pause, base in zip(pauses, [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0], strict=False):
            assert base / 2 <= pause <= base
    assert list(Policy(max_attempts=1).pauses()) == []
    with pytest.raises(InvalidArgument):
        Policy(max_attempts=0)
    with pytest.raises(InvalidArgument):
        Policy(timeout=0)
