"""Resource names, built only here from ids checked against the server's rule, so a handle can
never send a name that points outside its tenant (`acme/../globex`, `Acme`, a unicode
lookalike): such ids are refused before anything is sent."""

from __future__ import annotations

import re

from bulkhead.errors import InvalidArgument

_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def check_id(kind: str, value: str) -> str:
    """`value` if it matches `[a-z0-9][a-z0-9_-]{0,62}` (ASCII only), else InvalidArgument."""
    if not isinstance(value, str) or _ID.fullmatch(value) is None or not value.isascii():
        raise InvalidArgument(
            f"invalid {kind} id {value!r}: expected 1 to 63 of [a-z0-9_-], "
            "starting with a lowercase letter or digit"
        )
    return value


def tenant_name(tenant: str) -> str:
    return f"tenants/{check_id('tenant', tenant)}"


def key_name(tenant: str, key_id: str) -> str:
    return f"{tenant_name(tenant)}/keys/{check_id('key', key_id)}"


def last_segment(name: str) -> str:
    return name.rsplit("/", 1)[-1]


class Names:
    """The names of one tenant's resources, memoised: the query path builds a collection name
    on every call, and a dict lookup is cheaper than checking the id again."""

    __slots__ = ("_caches", "_collections", "parent", "tenant")

    def __init__(self, tenant: str) -> None:
        self.tenant = check_id("tenant", tenant)
        self.parent = f"tenants/{tenant}"
        self._collections: dict[str, str] = {}
        self._caches: dict[str, str] = {}

    def collection(self, collection: str) -> str:
        name = self._collections.get(collection)
        if name is None:
            name = f"{self.parent}/collections/{check_id('collection', collection)}"
            self._collections[collection] = name
        return name

    def cache(self, cache: str) -> str:
        name = self._caches.get(cache)
        if name is None:
            name = f"{self.parent}/caches/{check_id('cache', cache)}"
            self._caches[cache] = name
        return name

    def key(self, key_id: str) -> str:
        return f"{self.parent}/keys/{check_id('key', key_id)}"
