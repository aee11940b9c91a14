"""Query filters: small builders for `bulkhead.v1.Filter` trees, and `from_dict` for the
MongoDB-style dicts that LangChain and LlamaIndex users already write. Filters apply to the
collection's indexed fields only (the server answers INVALID_ARGUMENT for any other field), and
the builders pick the wire type from the Python value: int bounds give an integer range (which
also works on float fields), float bounds a double range, datetimes a time range over an
integer field holding Unix milliseconds.

    filters.all_(filters.eq("section", "net"), filters.range("year", gte=2020))
    filters.from_dict({"section": "net", "year": {"$gte": 2020}})
"""

from __future__ import annotations

import builtins
import numbers
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from bulkhead._proto.bulkhead.v1.common_pb2 import Value
from bulkhead._proto.bulkhead.v1.records_pb2 import (
    Condition,
    DoubleRange,
    Filter,
    IntRange,
    TimeRange,
    ValueList,
)
from bulkhead.errors import InvalidArgument
from bulkhead.types import timestamp, value_to_pb

__all__ = [
    "Filter",
    "FilterLike",
    "all_",
    "any_",
    "as_filter",
    "eq",
    "exists",
    "from_dict",
    "in_",
    "not_",
    "range",
]

FilterLike = Filter | Mapping[str, Any]
"""A Filter message, or a dict for `from_dict`."""


def _scalar(field: str, value: Any) -> Value:
    if value is None:
        raise InvalidArgument(f"{field}: None is not a value (use $exists to test presence)")
    return value_to_pb(field, value)


def eq(field: str, value: Any) -> Filter:
    """Records whose `field` equals `value` (for a keyword field holding a list of strings:
    whose list contains it)."""
    return Filter(condition=Condition(field=field, eq=_scalar(field, value)))


def in_(field: str, values: Iterable[Any]) -> Filter:
    """Records whose `field` equals one of `values` (at least one, at most 1,024)."""
    if isinstance(values, (str, bytes)):
        raise InvalidArgument(f"{field}: in_ takes a list of values, not a single string")
    wire = [_scalar(field, v) for v in values]
    if not wire:
        raise InvalidArgument(f"{field}: in_ needs at least one value")
    condition = Condition(field=field)
    getattr(condition, "in").CopyFrom(ValueList(values=wire))  # `in` is a Python keyword
    return Filter(condition=condition)


def range(  # noqa: A001 - the name of the API
    field: str,
    gte: Any = None,
    gt: Any = None,
    lte: Any = None,
    lt: Any = None,
) -> Filter:
    """Records whose `field` lies within the given bounds: ints give an integer range, floats
    (or ints mixed with floats) a double range, datetimes a time range (naive ones are UTC)."""
    bounds = {
        k: v for k, v in (("gte", gte), ("gt", gt), ("lte", lte), ("lt", lt)) if v is not None
    }
    if not bounds:
        raise InvalidArgument(f"{field}: a range needs at least one of gte, gt, lte, lt")
    values = list(bounds.values())
    if all(isinstance(v, datetime) for v in values):
        condition = Condition(
            field=field, time_range=TimeRange(**{k: timestamp(v) for k, v in bounds.items()})
        )
    elif any(isinstance(v, (bool, datetime)) or not isinstance(v, numbers.Real) for v in values):
        raise InvalidArgument(
            f"{field}: range bounds must be all numbers or all datetimes, got "
            + ", ".join(type(v).__name__ for v in values)
        )
    elif all(isinstance(v, numbers.Integral) for v in values):
        condition = Condition(
            field=field, int_range=IntRange(**{k: int(v) for k, v in bounds.items()})
        )
    else:
        condition = Condition(
            field=field, double_range=DoubleRange(**{k: float(v) for k, v in bounds.items()})
        )
    return Filter(condition=condition)


def exists(field: str) -> Filter:
    """Records that have `field` (for absence: `not_(exists(field))`)."""
    return Filter(condition=Condition(field=field, exists=True))


def all_(*filters: FilterLike) -> Filter:
    """Records matching every filter."""
    return Filter(must=[as_filter(f) for f in filters])


def any_(*filters: FilterLike) -> Filter:
    """Records matching at least one filter."""
    if not filters:
        raise InvalidArgument("any_ needs at least one filter")
    return Filter(should=[as_filter(f) for f in filters])


def not_(*filters: FilterLike) -> Filter:
    """Records matching none of the filters."""
    return Filter(must_not=[as_filter(f) for f in filters])


def as_filter(value: FilterLike) -> Filter:
    """A Filter message as is, a dict through `from_dict`."""
    if isinstance(value, Filter):
        return value
    if isinstance(value, Mapping):
        return from_dict(value)
    raise InvalidArgument(
        f"a filter must be a bulkhead.v1.Filter or a dict, got {type(value).__name__}"
    )


_RANGE_OPS = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}


def _list(op: str, field: str, value: Any) -> builtins.list[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidArgument(f"{field}: {op} takes a list of values")
    return builtins.list(value)


def _field(field: str, spec: Any) -> Filter:
    """The filter of one `field: spec` entry of a dict."""
    if not isinstance(spec, Mapping):
        if isinstance(spec, (builtins.list, tuple, set)):
            raise InvalidArgument(
                f"{field}: a list is ambiguous here; use {{'$in': [...]}} for any of its values"
            )
        return eq(field, spec)
    if not spec:
        raise InvalidArgument(f"{field}: an empty operator dict")
    parts: builtins.list[Filter] = []
    bounds: dict[str, Any] = {}
    for op, value in spec.items():
        if op in _RANGE_OPS:
            bounds[_RANGE_OPS[op]] = value
        elif op == "$eq":
            parts.append(eq(field, value))
        elif op == "$ne":
            parts.append(not_(eq(field, value)))
        elif op == "$in":
            parts.append(in_(field, _list(op, field, value)))
        elif op == "$nin":
            values = _list(op, field, value)
            if values:
                parts.append(not_(in_(field, values)))
        elif op == "$exists":
            if not isinstance(value, bool):
                raise InvalidArgument(f"{field}: $exists takes true or false")
            parts.append(exists(field) if value else not_(exists(field)))
        elif op == "$not":
            if not isinstance(value, Mapping):
                raise InvalidArgument(f"{field}: $not takes an operator dict")
            parts.append(not_(_field(field, value)))
        else:
            raise InvalidArgument(f"{field}: unknown operator {op!r}")
    if bounds:
        parts.append(range(field, **bounds))
    if not parts:  # only `$nin: []`, which excludes nothing
        return Filter()
    return parts[0] if len(parts) == 1 else all_(*parts)


def _sub_filters(op: str, value: Any) -> builtins.list[Filter]:
    if isinstance(value, Mapping):
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidArgument(f"{op} takes a list of filter dicts")
    subs = [from_dict(v) if isinstance(v, Mapping) else as_filter(v) for v in value]
    if not subs:
        raise InvalidArgument(f"{op} needs at least one filter")
    return subs


def from_dict(spec: Mapping[str, Any]) -> Filter:
    """A Filter from a MongoDB-style dict. Entries are ANDed; a field maps to a value
    (equality) or to operators: `$eq`, `$ne`, `$in`, `$nin`, `$gt`, `$gte`, `$lt`, `$lte`,
    `$exists`, `$not`; top-level `$and`, `$or` and `$not` take lists of such dicts. `$ne` and
    `$nin` also match records without the field. Unknown operators raise InvalidArgument (a
    ValueError)."""
    if not isinstance(spec, Mapping):
        raise InvalidArgument(f"a filter dict must be a mapping, got {type(spec).__name__}")
    parts: builtins.list[Filter] = []
    for key, value in spec.items():
        if not isinstance(key, str):
            raise InvalidArgument(f"filter keys must be strings, got {key!r}")
        if key == "$and":
            parts.append(all_(*_sub_filters(key, value)))
        elif key == "$or":
            parts.append(any_(*_sub_filters(key, value)))
        elif key == "$not":
            parts.append(not_(*_sub_filters(key, value)))
        elif key.startswith("$"):
            raise InvalidArgument(f"unknown operator {key!r}")
        else:
            parts.append(_field(key, value))
    return parts[0] if len(parts) == 1 else all_(*parts)
