"""One real `bulkhead serve` per session with a tenant for the suite and a collection per test
(`bulkhead.pytest_fixtures`), and the embeddings the tests use."""

from __future__ import annotations

import hashlib
import math
import re

import pytest
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

pytest_plugins = ["bulkhead.pytest_fixtures"]


@pytest.fixture(scope="session")
def tenant_prefix() -> str:
    return "lc"
