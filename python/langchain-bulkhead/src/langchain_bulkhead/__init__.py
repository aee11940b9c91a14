"""LangChain integrations of Bulkhead: a vector store and a semantic LLM cache.

Both are bound to one tenant through a `bulkhead` tenant handle, so retrieval and caching code
built on them has no way to reach another tenant's data.
"""

from langchain_bulkhead._metadata import JSON_KEY
from langchain_bulkhead.cache import BulkheadSemanticCache
from langchain_bulkhead.vectorstores import BulkheadVectorStore

__all__ = ["JSON_KEY", "BulkheadSemanticCache", "BulkheadVectorStore"]
