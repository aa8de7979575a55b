"""Query tests use the API fixtures: a per-test project key and a client on the collector."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from support import Collector


@pytest.fixture
async def key(make_key: Callable[..., Any], project_name: str) -> str:
    return await make_key(project_name, "ingest", "read")


@pytest.fixture
async def client(collector: Collector, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=collector.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        yield http
