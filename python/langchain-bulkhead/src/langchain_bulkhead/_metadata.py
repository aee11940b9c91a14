"""LangChain metadata <-> Bulkhead metadata.

LangChain documents carry arbitrary JSON-like metadata; Bulkhead stores only strings, 64-bit
integers, doubles, booleans and lists of strings, at most 64 keys, none starting with `_`.
Values Bulkhead can hold natively are stored as they are, so they stay filterable (when the
collection indexes them). Everything else (None, nested dicts, lists that are not all strings,
integers beyond 64 bits, keys starting with `_`) is JSON-encoded together under the one key
`JSON_KEY`, and decoded back on the way out, so every JSON-serialisable metadata round-trips
exactly. Those spilled values can't be filtered on. Metadata that isn't JSON-serialisable
(a datetime, a custom object) is refused with a ValueError naming the keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

JSON_KEY = "langchain_json"
"""The metadata key holding the JSON object of values Bulkhead can't store natively."""

_MAX_KEYS = 64
_INT64 = (-(2**63), 2**63 - 1)


def _native(value: Any) -> bool:
    if isinstance(value, bool) or isinstance(value, (str, float)):
        return True
    if isinstance(value, int):
        return _INT64[0] <= value <= _INT64[1]
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def encode(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The Bulkhead metadata of one document."""
    stored: dict[str, Any] = {}
    spilled: dict[str, Any] = {}
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise ValueError(f"metadata keys must be strings, got {key!r}")
        if (
            key.startswith("_")
            or key == JSON_KEY
            or not _native(value)
            or len(stored) >= _MAX_KEYS - 1
        ):
            spilled[key] = value
        else:
            stored[key] = value
    if spilled:
        try:
            stored[JSON_KEY] = json.dumps(spilled, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"metadata keys {sorted(spilled)} hold values Bulkhead can't store natively "
                f"and that aren't JSON-serialisable either: {err}"
            ) from err
    return stored


def decode(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The LangChain metadata of one stored record."""
    metadata = {k: v for k, v in stored.items() if k != JSON_KEY}
    spilled = stored.get(JSON_KEY)
    if isinstance(spilled, str):
        metadata.update(json.loads(spilled))
    return metadata
