"""LangChain's own vector-store suite (langchain-tests), sync and async, against the server.

It runs twice: with an `AsyncTenantHandle` (native async calls) and with the sync handle only
(LangChain's thread-pool fallbacks of the async methods)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from langchain_bulkhead import BulkheadVectorStore


class TestBulkheadVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tenant, atenant, collection_name: str) -> Iterator[VectorStore]:  # type: ignore[override]
        yield BulkheadVectorStore(
            tenant,
            collection_name,
            self.get_embeddings(),
            async_tenant=atenant,
            create_collection_if_missing=True,
        )


class TestBulkheadVectorStoreSyncHandle(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tenant, collection_name: str) -> Iterator[VectorStore]:  # type: ignore[override]
        yield BulkheadVectorStore(
            tenant, collection_name, self.get_embeddings(), create_collection_if_missing=True
        )
