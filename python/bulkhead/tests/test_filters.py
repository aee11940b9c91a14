"""How filter dicts and builders map to Filter messages (no server needed), and that the server
applies them as documented (with one)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bulkhead import Record, TenantHandle, filters
from bulkhead.errors import InvalidArgument
from bulkhead.v1 import Condition, DoubleRange, Filter, IntRange, TimeRange, Value, ValueList


def cond(**kwargs: object) -> Filter:
    return Filter(condition=Condition(**kwargs))  # type: ignore[arg-type]


def test_builders_pick_the_wire_type_from_the_value() -> None:
    assert filters.eq("lang", "en") == cond(field="lang", eq=Value(string_value="en"))
    assert filters.eq("n", 3) == cond(field="n", eq=Value(int_value=3))
    assert filters.eq("x", 1.5) == cond(field="x", eq=Value(double_value=1.5))
    assert filters.eq("b", True) == cond(field="b", eq=Value(bool_value=True))
    assert filters.in_("tag", ["a", "b"]) == cond(
        field="tag",
        **{"in": ValueList(values=[Value(string_value="a"), Value(string_value="b")])},
    )
    assert filters.range("year", gte=2020, lt=2030) == cond(
        field="year", int_range=IntRange(gte=2020, lt=2030)
    )
    assert filters.range("price", gt=1, lte=2.5) == cond(
        field="price", double_range=DoubleRange(gt=1.0, lte=2.5)
    )
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ranged = filters.range("t", gte=when)
    assert ranged.condition.HasField("time_range")
    assert ranged.condition.time_range.gte.seconds == int(when.timestamp())
    naive = filters.range("t", gte=datetime(2026, 1, 1))
    assert naive.condition.time_range == TimeRange(gte=ranged.condition.time_range.gte)
    assert filters.exists("f") == cond(field="f", exists=True)
    a, b = filters.eq("a", 1), filters.eq("b", 2)
    assert filters.all_(a, b) == Filter(must=[a, b])
    assert filters.any_(a, b) == Filter(should=[a, b])
    assert filters.not_(a) == Filter(must_not=[a])
    assert filters.all_({"a": 1}) == Filter(must=[a])


def test_from_dict_maps_every_operator() -> None:
    eq = filters.eq
    assert filters.from_dict({}) == Filter()
    assert filters.from_dict({"section": "net"}) == eq("section", "net")
    assert filters.from_dict({"section": {"$eq": "net"}}) == eq("section", "net")
    assert filters.from_dict({"section": {"$ne": "net"}}) == filters.not_(eq("section", "net"))
    assert filters.from_dict({"tag": {"$in": ["a", "b"]}}) == filters.in_("tag", ["a", "b"])
    assert filters.from_dict({"tag": {"$nin": ["a"]}}) == filters.not_(filters.in_("tag", ["a"]))
    assert filters.from_dict({"tag": {"$nin": []}}) == Filter()
    assert filters.from_dict({"year": {"$gte": 2020, "$lt": 2030}}) == filters.range(
        "year", gte=2020, lt=2030
    )
    assert filters.from_dict({"year": {"$gt": 1, "$lte": 2}}) == filters.range("year", gt=1, lte=2)
    assert filters.from_dict({"f": {"$exists": True}}) == filters.exists("f")
    assert filters.from_dict({"f": {"$exists": False}}) == filters.not_(filters.exists("f"))
    assert filters.from_dict({"year": {"$not": {"$gte": 2020}}}) == filters.not_(
        filters.range("year", gte=2020)
    )
    # Several entries, and several operators on one field, are ANDed.
    assert filters.from_dict({"section": "net", "year": {"$gte": 2020}}) == filters.all_(
        eq("section", "net"), filters.range("year", gte=2020)
    )
    assert filters.from_dict({"tag": {"$in": ["a"], "$ne": "b"}}) == filters.all_(
        filters.in_("tag", ["a"]), filters.not_(eq("tag", "b"))
    )
    assert filters.from_dict({"$or": [{"a": 1}, {"b": 2}]}) == filters.any_(eq("a", 1), eq("b", 2))
    assert filters.from_dict({"$and": [{"a": 1}, {"b": 2}]}) == filters.all_(eq("a", 1), eq("b", 2))
    assert filters.from_dict({"$not": [{"a": 1}]}) == filters.not_(eq("a", 1))
    assert filters.from_dict({"$not": {"a": 1}}) == filters.not_(eq("a", 1))
    nested = {"$or": [{"section": "net", "year": {"$gte": 2020}}, {"$not": {"lang": "de"}}]}
    assert filters.from_dict(nested) == filters.any_(
        filters.all_(eq("section", "net"), filters.range("year", gte=2020)),
        filters.not_(eq("lang", "de")),
    )
    # A Filter message inside $or/$and passes through.
    assert filters.from_dict({"$or": [eq("a", 1)]}) == filters.any_(eq("a", 1))


@pytest.mark.parametrize(
    "spec",
    [
        {"a": {"$regex": "x"}},
        {"$nor": [{"a": 1}]},
        {"a": {}},
        {"a": ["x", "y"]},
        {"a": None},
        {"a": {"$in": "abc"}},
        {"a": {"$in": []}},
        {"a": {"$exists": "yes"}},
        {"a": {"$gt": "z"}},
        {"a": {"$gt": 1, "$lt": datetime(2026, 1, 1)}},
        {"$or": []},
        {"$or": "a"},
        {"a": {"$not": 3}},
        {"a": {"$eq": {"nested": 1}}},
    ],
)
def test_from_dict_refuses_what_it_cannot_map(spec: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument) as info:
        filters.from_dict(spec)
    assert isinstance(info.value, ValueError)  # callers catching ValueError see it too


def test_builders_refuse_empty_or_mistyped_input() -> None:
    with pytest.raises(InvalidArgument):
        filters.range("y")
    with pytest.raises(InvalidArgument):
        filters.any_()
    with pytest.raises(InvalidArgument):
        filters.in_("t", "abc")
    with pytest.raises(InvalidArgument):
        filters.as_filter(42)  # type: ignore[arg-type]


def test_the_server_applies_filters_as_mapped(tenant: TenantHandle) -> None:
    tenant.create_collection(
        "docs",
        3,
        indexed_fields={
            "section": "keyword",
            "year": "integer",
            "tags": "keyword",
            "score": "float",
        },
    )
    rows = {
        "n1": ("net", 2021, ["http", "cli"], 0.5),
        "n2": ("net", 2018, ["cli"], 1.5),
        "g1": ("games", 2022, ["roguelike"], 2.5),
        "g2": ("games", 2015, [], 3.5),
    }
    tenant.upsert(
        "docs",
        [
            Record(
                rid,
                [1.0, 0.1 * i, 0.0],
                metadata={"section": s, "year": y, "score": sc, **({"tags": t} if t else {})},
            )
            for i, (rid, (s, y, t, sc)) in enumerate(rows.items())
        ],
    )

    def ids(spec: object) -> set[str]:
        return {h.id for h in tenant.query("docs", [1.0, 0.0, 0.0], 10, filter=spec)}  # type: ignore[arg-type]

    assert ids({"section": "net"}) == {"n1", "n2"}
    assert ids({"section": {"$ne": "net"}}) == {"g1", "g2"}
    assert ids({"year": {"$gte": 2020}}) == {"n1", "g1"}
    assert ids({"section": "games", "year": {"$gt": 2016}}) == {"g1"}
    assert ids({"$or": [{"year": 2018}, {"year": 2015}]}) == {"n2", "g2"}
    assert ids({"tags": {"$in": ["http", "roguelike"]}}) == {"n1", "g1"}
    assert ids({"tags": {"$nin": ["cli"]}}) == {"g1", "g2"}
    assert ids({"tags": {"$exists": False}}) == {"g2"}
    assert ids({"score": {"$gt": 1, "$lt": 3}}) == {"n2", "g1"}  # int bounds on a float field
    assert ids(
        filters.all_(filters.eq("section", "net"), filters.not_(filters.eq("tags", "http")))
    ) == {"n2"}
    with pytest.raises(InvalidArgument, match="lang"):
        ids({"lang": "en"})  # not an indexed field: refused by the server
