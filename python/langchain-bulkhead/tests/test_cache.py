"""BulkheadSemanticCache against the server: hits on similar prompts, misses elsewhere, and no
answer crossing a user scope, an LLM configuration or a tenant."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from bulkhead import Client
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation

from conftest import BagOfWords
from langchain_bulkhead import BulkheadSemanticCache

LLM = "fake-llm temperature=0"
OTHER_LLM = "fake-llm temperature=1"
ANSWER = [Generation(text="30 days from delivery.")]


@pytest.fixture
def cache_id() -> str:
    return f"cache-{uuid.uuid4().hex[:10]}"


def make(tenant, cache_id: str, **kwargs) -> BulkheadSemanticCache:  # type: ignore[no-untyped-def]
    kwargs.setdefault("min_similarity", 0.85)
    return BulkheadSemanticCache(tenant, cache_id, BagOfWords(), **kwargs)


def test_hit_on_similar_prompt_and_miss_on_others(tenant, cache_id: str) -> None:  # type: ignore[no-untyped-def]
    cache = make(tenant, cache_id)
    assert cache.lookup("what is our refund policy", LLM) is None
    cache.update("what is our refund policy", LLM, ANSWER)
    assert cache.lookup("what is our refund policy", LLM) == ANSWER
    assert cache.lookup("what is our refund policy please", LLM) == ANSWER
    assert cache.lookup("how do I reset my password", LLM) is None
    # the same prompt for another LLM configuration is a miss
    assert cache.lookup("what is our refund policy", OTHER_LLM) is None


def test_chat_generations_round_trip(tenant, cache_id: str) -> None:  # type: ignore[no-untyped-def]
    cache = make(tenant, cache_id)
    chat = [ChatGeneration(message=AIMessage(content="hello", id="m1"), generation_info={"n": 1})]
    cache.update("say hello", LLM, chat)
    assert cache.lookup("say hello", LLM) == chat


def test_scopes_are_isolated(tenant, cache_id: str) -> None:  # type: ignore[no-untyped-def]
    alice = make(tenant, cache_id, scope="user-alice")
    bob = make(tenant, cache_id, scope="user-bob")
    shared = make(tenant, cache_id)
    alice.update("my account balance", LLM, [Generation(text="alice: 12 EUR")])
    assert bob.lookup("my account balance", LLM) is None
    assert shared.lookup("my account balance", LLM) is None
    bob.update("my account balance", LLM, [Generation(text="bob: 7 EUR")])
    assert alice.lookup("my account balance", LLM) == [Generation(text="alice: 12 EUR")]
    assert bob.lookup("my account balance", LLM) == [Generation(text="bob: 7 EUR")]


def test_tenants_are_isolated(client: Client, new_tenant: Callable[[str], tuple[str, str]]) -> None:
    (a_id, a_key), (b_id, b_key) = new_tenant("cache-a"), new_tenant("cache-b")
    a = make(client.tenant(a_id, api_key=a_key), "answers")
    b = make(client.tenant(b_id, api_key=b_key), "answers")
    a.update("quarterly revenue", LLM, [Generation(text="A's numbers")])
    assert b.lookup("quarterly revenue", LLM) is None
    assert a.lookup("quarterly revenue", LLM) == [Generation(text="A's numbers")]


def test_clear_drops_only_this_scope(tenant, cache_id: str) -> None:  # type: ignore[no-untyped-def]
    alice = make(tenant, cache_id, scope="user-alice")
    bob = make(tenant, cache_id, scope="user-bob")
    for cache in (alice, bob):
        cache.update("first question", LLM, ANSWER)
        cache.update("first question", OTHER_LLM, ANSWER)
    alice.clear(llm_string=OTHER_LLM)
    assert alice.lookup("first question", OTHER_LLM) is None
    assert alice.lookup("first question", LLM) == ANSWER
    alice.clear()
    assert alice.lookup("first question", LLM) is None
    assert bob.lookup("first question", LLM) == ANSWER
    assert bob.lookup("first question", OTHER_LLM) == ANSWER


def test_llm_uses_the_cache(tenant, cache_id: str) -> None:  # type: ignore[no-untyped-def]
    llm = FakeListLLM(responses=["first answer", "second answer"], cache=make(tenant, cache_id))
    assert llm.invoke("explain tenants") == "first answer"
    assert llm.invoke("explain tenants") == "first answer"  # served from Bulkhead
    assert llm.invoke("something else entirely") == "second answer"


async def test_async_variants(tenant, atenant, cache_id: str) -> None:  # type: ignore[no-untyped-def]
    alice = make(tenant, cache_id, scope="user-alice", async_tenant=atenant)
    bob = make(tenant, cache_id, scope="user-bob", async_tenant=atenant)
    await alice.aupdate("what is our refund policy", LLM, ANSWER)
    assert await alice.alookup("what is our refund policy please", LLM) == ANSWER
    assert await bob.alookup("what is our refund policy", LLM) is None
    await bob.aupdate("what is our refund policy", LLM, ANSWER)
    await alice.aclear()
    assert await alice.alookup("what is our refund policy", LLM) is None
    assert await bob.alookup("what is our refund policy", LLM) == ANSWER
    await bob.aclear(llm_string=LLM)
    assert await bob.alookup("what is our refund policy", LLM) is None


def test_scope_length_is_checked(tenant, cache_id: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="scope"):
        make(tenant, cache_id, scope="x" * 300)
