"""API test fixtures: a key for the test's project and HTTP clients of the shared collector."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from support import Collector


@pytest.fixture
async def key(make_key: Callable[..., Any], project_name: str) -> str:
    """An ingest + read key of this test's own project."""
    return await make_key(project_name, "ingest", "read")


@pytest.fixture
async def client(collector: Collector, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """The shared collector, authenticated with `key`."""
    async with httpx.AsyncClient(
        base_url=collector.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        yield http


@pytest.fixture
async def anonymous(collector: Collector) -> AsyncIterator[httpx.AsyncClient]:
    """The shared collector, without credentials."""
    async with httpx.AsyncClient(base_url=collector.url, timeout=30) as http:
        yield http
