"""One real `bulkhead serve` per session; tests that need isolation get their own tenant or
collection from the factories here."""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio
from bulkhead import AsyncClient, Client
from bulkhead.errors import NotFound
from bulkhead.testing import BulkheadServer
from langchain_core.embeddings import Embeddings


class BagOfWords(Embeddings):
    """Deterministic embeddings where texts sharing words are close: each word adds 1 to a
    dimension chosen by its hash, and the vector is unit-normalised."""

    def __init__(self, size: int = 64) -> None:
        self.size = size

    def embed_query(self, text: str) -> list[float]:
        vec = [0.0] * self.size
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.size] += 1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec] if any(vec) else [1.0] + [0.0] * (self.size - 1)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]


class FixedEmbeddings(Embeddings):
    """Maps each known text to a given vector."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vectors[t] for t in texts]


@pytest.fixture(scope="session")
def server() -> Iterator[BulkheadServer]:
    with BulkheadServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def client(server: BulkheadServer) -> Iterator[Client]:
    with Client(server.endpoint) as c:
        yield c


@pytest.fixture(scope="session")
def new_tenant(server: BulkheadServer, client: Client) -> Callable[[str], tuple[str, str]]:
    """Creates a tenant with a fresh id and a WRITE key; returns (tenant id, key secret)."""
    admin = client.admin(admin_token=server.admin_token)

    def make(prefix: str) -> tuple[str, str]:
        tenant_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
        admin.create_tenant(tenant_id)
        _, secret = admin.create_key(tenant_id, "write", description="langchain tests")
        return tenant_id, secret

    return make


@pytest.fixture(scope="session")
def main_tenant(new_tenant: Callable[[str], tuple[str, str]]) -> tuple[str, str]:
    return new_tenant("lc")


@pytest.fixture(scope="session")
def tenant(client: Client, main_tenant: tuple[str, str]):  # type: ignore[no-untyped-def]
    return client.tenant(main_tenant[0], api_key=main_tenant[1])


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def aclient(server: BulkheadServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.endpoint) as c:
        yield c


@pytest.fixture(scope="session")
def atenant(aclient: AsyncClient, main_tenant: tuple[str, str]):  # type: ignore[no-untyped-def]
    return aclient.tenant(main_tenant[0], api_key=main_tenant[1])


@pytest.fixture
def collection_name(tenant) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A collection id no other test uses; the collection (if created) is dropped after."""
    name = f"c-{uuid.uuid4().hex[:12]}"
    yield name
    try:
        tenant.delete_collection(name)
    except NotFound:  # the test never created it
        pass
