"""One real `bulkhead serve` per session with a tenant for the suite and a collection per test
(`bulkhead.pytest_fixtures`)."""

from __future__ import annotations

import pytest

pytest_plugins = ["bulkhead.pytest_fixtures"]


@pytest.fixture(scope="session")
def tenant_prefix() -> str:
    return "li"
