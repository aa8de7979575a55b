"""Suggestions for the service pickers, cached briefly per project.

The list only fills a `<datalist>` (any service can still be typed), so it is read from
the last hour of rollups and kept for a minute: a rollup row carries its latency sketch,
and reading a day of them for a suggestion list would cost more than the page itself.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from app.query.services import rollup_service_names

LOOKBACK = timedelta(hours=1)
TTL_S = 60.0
_MAX_PROJECTS = 1000
_cache: dict[int, tuple[float, list[str]]] = {}


async def service_suggestions(engine: AsyncEngine, project_id: int) -> list[str]:
    now = time.monotonic()
    cached = _cache.get(project_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    end = datetime.now(UTC)
    names = await rollup_service_names(engine, project_id, start=end - LOOKBACK, end=end)
    if len(_cache) >= _MAX_PROJECTS:
        _cache.clear()
    _cache[project_id] = (now + TTL_S, names)
    return names
