"""LlamaIndex vector store on Bulkhead, bound to one tenant through a `bulkhead` tenant handle."""

from llama_index.vector_stores.bulkhead.base import BulkheadVectorStore

__all__ = ["BulkheadVectorStore"]
