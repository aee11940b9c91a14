#!/usr/bin/env python3
"""Two tenants, one Bulkhead, a LangChain retriever each: the other tenant's documents never
come back, even for a question that is about them.

Each tenant is a Debian section of the debian-minilm set (`net` and `games` by default): its
packages' descriptions are loaded into its own collection with its own API key, and a
retriever built on `langchain_bulkhead.BulkheadVectorStore` answers questions. The "answer" is
extractive (the retrieved packages' synopses), so no LLM is involved, and there is no network
either: the embedder is a lookup table of the set's precomputed all-MiniLM-L6-v2 vectors
(`base.fvecs` row i embeds line i of `docs.jsonl.gz`; `query.fvecs` row i embeds the synopsis
of package i). Each tenant asks its own question and the other tenant's; the script exits 1 if
any retrieved document belongs to the other tenant.

    python python/examples/rag.py                        # starts its own server
    python python/examples/rag.py --endpoint 127.0.0.1:7600 --admin-token "$BULKHEAD_ADMIN_TOKEN"
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bulkhead import Client
from bulkhead.errors import NotFound
from bulkhead.testing import BulkheadServer
from langchain_bulkhead import BulkheadVectorStore
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

REPO = Path(__file__).resolve().parents[2]
QUERY_ROWS = 1000


class PrecomputedEmbeddings(Embeddings):
    """Embeds only texts whose vectors are known: a document's text, or a question that is a
    package synopsis with a row in `query.fvecs`."""

    def __init__(self, documents: dict[str, np.ndarray], questions: dict[str, np.ndarray]) -> None:
        self.documents = documents
        self.questions = questions
        self.dimension = len(next(iter(documents.values())))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.documents[t].tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        try:
            vector: list[float] = self.questions[text].tolist()
        except KeyError:
            raise KeyError(f"no precomputed vector for the question {text!r}") from None
        return vector


def read_fvecs(path: Path) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    return raw.reshape(-1, dim + 1)[:, 1:].view(np.float32)


@dataclass
class Section:
    name: str
    docs: list[Document]
    question: str


def load(data: Path, sections: list[str]) -> tuple[list[Section], PrecomputedEmbeddings]:
    base = read_fvecs(data / "base.fvecs")
    queries = read_fvecs(data / "query.fvecs")
    by_section: dict[str, list[Document]] = {s: [] for s in sections}
    doc_vectors: dict[str, np.ndarray] = {}
    question_of: dict[str, str] = {}
    question_vectors: dict[str, np.ndarray] = {}
    with gzip.open(data / "docs.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line_no, line in enumerate(lines):
            row = json.loads(line)
            if row["id"] != line_no:
                raise SystemExit(
                    f"docs.jsonl.gz line {line_no} has id {row['id']}: rows out of order"
                )
            if row["tenant"] not in by_section:
                continue
            by_section[row["tenant"]].append(
                Document(
                    id=str(row["id"]),
                    page_content=row["text"],
                    metadata={
                        "package": row["package"],
                        "title": row["title"],
                        "section": row["tenant"],
                    },
                )
            )
            doc_vectors[row["text"]] = base[line_no]
            # the first package of the section that has an embedded synopsis is its question
            if line_no < QUERY_ROWS and row["tenant"] not in question_of:
                question_of[row["tenant"]] = row["title"]
                question_vectors[row["title"]] = queries[line_no]
    for name in sections:
        if not by_section[name]:
            raise SystemExit(f"no documents in section {name!r}")
        if name not in question_of:
            raise SystemExit(f"section {name!r} has no package among the first {QUERY_ROWS} rows")
    loaded = [Section(n, by_section[n], question_of[n]) for n in sections]
    return loaded, PrecomputedEmbeddings(doc_vectors, question_vectors)


@contextlib.contextmanager
def server_address(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    if args.endpoint:
        token = args.admin_token or os.environ.get("BULKHEAD_ADMIN_TOKEN")
        if not token:
            raise SystemExit("--endpoint needs --admin-token (or BULKHEAD_ADMIN_TOKEN)")
        yield args.endpoint, token
        return
    print("starting a bulkhead server for this run ...")
    with BulkheadServer() as server:
        yield server.endpoint, server.admin_token


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=REPO.parent / "shared" / "data" / "debian-minilm"
    )
    parser.add_argument(
        "--sections", default="net,games", help="two Debian sections, one tenant each"
    )
    parser.add_argument("--endpoint", help="a running server (default: start one)")
    parser.add_argument("--admin-token", help="its admin token (default: $BULKHEAD_ADMIN_TOKEN)")
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the tenants after the run")
    args = parser.parse_args()
    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    if len(names) != 2 or names[0] == names[1]:
        parser.error("--sections takes two different sections")

    sections, embedder = load(args.data, names)
    for s in sections:
        print(f"loaded {len(s.docs)} '{s.name}' packages from {args.data}")

    leaks = 0
    with server_address(args) as (endpoint, admin_token), Client(endpoint) as client:
        admin = client.admin(admin_token=admin_token)
        suffix = uuid.uuid4().hex[:6]
        stores: dict[str, BulkheadVectorStore] = {}
        try:
            for s in sections:
                tenant_id = f"rag-{s.name}-{suffix}"
                admin.create_tenant(tenant_id)
                _, secret = admin.create_key(tenant_id, "write", description="rag example")
                handle = client.tenant(
                    tenant_id, api_key=secret
                )  # this tenant only, by construction
                store = BulkheadVectorStore(
                    handle,
                    "packages",
                    embedder,
                    create_collection_if_missing=True,
                    dimension=embedder.dimension,
                    indexed_fields={"package": "keyword"},
                )
                store.add_documents(s.docs)
                stores[s.name] = store
                print(
                    f"tenant {tenant_id}: {len(s.docs)} documents in collection 'packages', own WRITE key"
                )

            own_ids = {s.name: {d.id for d in s.docs} for s in sections}
            for s in sections:
                retriever = stores[s.name].as_retriever(search_kwargs={"k": args.top_k})
                for asked in sections:
                    question = asked.question
                    docs = retriever.invoke(question)
                    answer = "; ".join(
                        f"{d.metadata['package']}: {d.metadata['title']}" for d in docs
                    )
                    print(f"\n[{s.name}] Q: {question}")
                    print(f"[{s.name}] A: {answer or '(nothing found)'}")
                    for d in docs:
                        foreign = d.id not in own_ids[s.name] or d.metadata.get("section") != s.name
                        leaks += foreign
                        mark = "LEAK from another tenant" if foreign else "ok"
                        print(
                            f"      {d.id:>6}  {d.metadata['section']:<6} {d.metadata['package']:<32} {mark}"
                        )

            # the other tenant's ids, asked for directly, aren't there either
            for s in sections:
                other = next(o for o in sections if o is not s)
                probe = [d.id for d in other.docs[:50] if d.id]
                found = stores[s.name].get_by_ids(probe)
                leaks += len(found)
                print(
                    f"\n[{s.name}] get_by_ids of {len(probe)} '{other.name}' ids: {len(found)} found"
                )
        finally:
            if not args.keep:
                for s in sections:
                    with contextlib.suppress(NotFound):
                        admin.delete_tenant(f"rag-{s.name}-{suffix}")

    if leaks:
        print(f"\nFAIL: {leaks} documents crossed tenants")
        return 1
    print("\nOK: every retrieved document belongs to the tenant that asked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
