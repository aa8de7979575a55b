"""Query test fixtures (`key` and `client` come from tests/conftest.py): another project."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from query.query_kit import new_project_client
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector


@pytest.fixture
async def other_client(
    collector: Collector, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of another, new project."""
    async with await new_project_client(collector, engine) as http:
        yield http
