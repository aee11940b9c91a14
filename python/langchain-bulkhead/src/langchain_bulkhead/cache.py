"""A LangChain LLM cache (`BaseCache`) on Bulkhead's SemanticCacheService.

A prompt is a hit when a stored prompt's embedding is at least `min_similarity` close, so a
rephrased question reuses an answer. Answers are kept apart three ways, all enforced by the
server: per tenant (the handle), per user or session (`scope`), and per LLM configuration
(`llm_string`, hashed into the Bulkhead scope: a lookup only ever sees entries stored under
exactly its own scope, so a different model or temperature never gets another's answer).

The Bulkhead scope of an entry is `lc:<first 32 hex digits of sha256(llm_string)>` followed by
`:<scope>` when the cache has a scope. `clear(llm_string=...)` drops one LLM's entries of this
cache's scope with one call; `clear()` drops every LLM's entries of this scope, which means
reading the cache's scopes through an Arrow export (one pass over the cache) first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bulkhead.errors import AlreadyExists, NotFound
from langchain_core._api import LangChainBetaWarning
from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.embeddings import Embeddings
from langchain_core.load import dumps, loads
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
)
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    Generation,
    GenerationChunk,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from bulkhead import AsyncTenantHandle, TenantHandle

logger = logging.getLogger(__name__)

_SCOPE_PREFIX = "lc:"
_HASH_CHARS = 32
_MAX_SCOPE_BYTES = 256
_MAX_PROMPT_BYTES = 32 * 1024
"""Prompts are kept for inspection only (lookups compare embeddings) and share the 64 KiB
metadata budget of an entry, so longer ones are stored truncated."""

# What a cached answer may deserialise to: generations and the messages inside them, nothing
# that carries configuration (see langchain_core.load.loads on untrusted input).
_ALLOWED: list[Any] = [
    Generation,
    GenerationChunk,
    ChatGeneration,
    ChatGenerationChunk,
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
]


def _llm_hash(llm_string: str) -> str:
    return hashlib.sha256(llm_string.encode()).hexdigest()[:_HASH_CHARS]


def _serialize(generations: Sequence[Generation]) -> str:
    return json.dumps([dumps(g) for g in generations])


def _deserialize(response: str) -> list[Generation]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LangChainBetaWarning)
        return [loads(g, allowed_objects=_ALLOWED) for g in json.loads(response)]


def _truncate(prompt: str) -> str:
    raw = prompt.encode()
    if len(raw) <= _MAX_PROMPT_BYTES:
        return prompt
    return raw[:_MAX_PROMPT_BYTES].decode(errors="ignore")


class BulkheadSemanticCache(BaseCache):
    """LangChain LLM cache on the Bulkhead semantic cache `cache_id` of the handle's tenant.

    Args:
        tenant: a `bulkhead` tenant handle; the cache lives in (and never leaves) its tenant.
        cache_id: the cache's id (a collection of the tenant, created by `create_cache`).
        embedding: embeds prompts.
        async_tenant: optionally the same tenant through `AsyncClient`, for `alookup`,
            `aupdate` and `aclear`.
        min_similarity: the least cosine (or dot) similarity between a prompt and a stored
            prompt for a hit.
        scope: a user or session id inside the tenant; entries of other scopes (and unscoped
            entries) are never returned. At most 220 bytes.
        ttl_seconds: how long stored answers live (None: the cache's default TTL).
        max_age_seconds: ignore entries older than this on lookup.
        create_cache_if_missing: create the cache when the tenant has no collection
            `cache_id`, with `metric` and `dimension`.
        metric: `cosine` or `dot`, for a cache created here.
        dimension: the embedding dimension of a cache created here (default: that of
            `embedding`, found with one `embed_query` call).
    """

    def __init__(
        self,
        tenant: TenantHandle,
        cache_id: str,
        embedding: Embeddings,
        *,
        async_tenant: AsyncTenantHandle | None = None,
        min_similarity: float = 0.95,
        scope: str | None = None,
        ttl_seconds: int | None = None,
        max_age_seconds: int | None = None,
        create_cache_if_missing: bool = True,
        metric: str = "cosine",
        dimension: int | None = None,
    ) -> None:
        limit = _MAX_SCOPE_BYTES - len(_SCOPE_PREFIX) - _HASH_CHARS - 1
        if scope is not None and not 1 <= len(scope.encode()) <= limit:
            raise ValueError(f"scope must be 1 to {limit} bytes")
        self._tenant = tenant
        self._async_tenant = async_tenant
        self.cache_id = cache_id
        self.embedding = embedding
        self.min_similarity = min_similarity
        self.scope = scope
        self.ttl_seconds = ttl_seconds
        self.max_age_seconds = max_age_seconds
        try:
            tenant.get_collection(cache_id)
        except NotFound:
            if not create_cache_if_missing:
                raise
            dim = dimension or len(embedding.embed_query("dimension probe"))
            try:
                tenant.create_cache(cache_id, dim, metric)
            except AlreadyExists:
                pass

    def _scope(self, llm_string: str) -> str:
        base = _SCOPE_PREFIX + _llm_hash(llm_string)
        return base if self.scope is None else f"{base}:{self.scope}"

    def _owns(self, scope: str) -> bool:
        if not scope.startswith(_SCOPE_PREFIX):
            return False
        rest = scope[len(_SCOPE_PREFIX) + _HASH_CHARS :]
        return rest == ("" if self.scope is None else f":{self.scope}")

    def _owned_scopes(self, batches: Iterable[pa.RecordBatch]) -> set[str]:
        found: set[str] = set()
        for batch in batches:
            for meta in batch.column("metadata").to_pylist():
                scope = json.loads(meta).get("_scope") if meta else None
                if isinstance(scope, str) and self._owns(scope):
                    found.add(scope)
        return found

    def _store_kwargs(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE
    ) -> dict[str, Any]:
        return {
            "prompt": _truncate(prompt),
            "response": _serialize(return_val),
            "ttl_seconds": self.ttl_seconds,
            "scope": self._scope(llm_string),
        }

    def _answer(self, response: str) -> RETURN_VAL_TYPE | None:
        try:
            return _deserialize(response)
        except (ValueError, TypeError, KeyError) as err:
            logger.warning("unreadable cache entry in %s treated as a miss: %s", self.cache_id, err)
            return None

    # ---- sync ----------------------------------------------------------------------------

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        entry = self._tenant.cache_lookup(
            self.cache_id,
            self.embedding.embed_query(prompt),
            self.min_similarity,
            max_age_seconds=self.max_age_seconds,
            scope=self._scope(llm_string),
        )
        return None if entry is None else self._answer(entry.response)

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        self._tenant.cache_store(
            self.cache_id,
            self.embedding.embed_query(prompt),
            **self._store_kwargs(prompt, llm_string, return_val),
        )

    def clear(self, **kwargs: Any) -> None:
        """Drops this cache's entries of its scope: those of `llm_string=` if given, else all."""
        llm_string = kwargs.get("llm_string")
        if llm_string is not None:
            scopes = {self._scope(llm_string)}
        else:
            scopes = self._owned_scopes(self._tenant.export_arrow(self.cache_id))
        for scope in sorted(scopes):
            self._tenant.cache_invalidate(self.cache_id, scope=scope)

    # ---- async ---------------------------------------------------------------------------

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        if self._async_tenant is None:
            return await super().alookup(prompt, llm_string)
        entry = await self._async_tenant.cache_lookup(
            self.cache_id,
            await self.embedding.aembed_query(prompt),
            self.min_similarity,
            max_age_seconds=self.max_age_seconds,
            scope=self._scope(llm_string),
        )
        return None if entry is None else self._answer(entry.response)

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        if self._async_tenant is None:
            await super().aupdate(prompt, llm_string, return_val)
            return
        await self._async_tenant.cache_store(
            self.cache_id,
            await self.embedding.aembed_query(prompt),
            **self._store_kwargs(prompt, llm_string, return_val),
        )

    async def aclear(self, **kwargs: Any) -> None:
        if self._async_tenant is None:
            await super().aclear(**kwargs)
            return
        llm_string = kwargs.get("llm_string")
        if llm_string is not None:
            scopes = {self._scope(llm_string)}
        else:
            scopes = self._owned_scopes(await self._async_tenant.export_arrow(self.cache_id))
        for scope in sorted(scopes):
            await self._async_tenant.cache_invalidate(self.cache_id, scope=scope)
