"""The search SQL can use its indexes: expressions spelled as the indexes were built."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector

from app.db.tables import logs, spans
from app.query.logs import LogFilters
from app.query.logs import search_query as log_search_query
from app.query.traces import SpanFilters, attribute_condition
from app.query.traces import search_query as trace_search_query


async def plan(engine: AsyncEngine, query: Any, *, ordered: bool = False) -> str:
    """EXPLAIN with sequential scans priced out, so any usable index is taken; `ordered`
    prices sorts out too, so an index that yields the query's order is taken whatever the
    statistics say (the partition-maintenance job may have ANALYZEd a nearly empty
    partition, where another index and a sort look cheaper)."""
    compiled = query.compile(
        dialect=postgresql.asyncpg.dialect(), compile_kwargs={"render_postcompile": True}
    )
    arguments = [
        json.dumps(value) if isinstance(value, (dict, list)) else value
        for value in (compiled.params[name] for name in compiled.positiontup)
    ]
    async with engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        async with raw.transaction():
            await raw.execute("SET LOCAL enable_seqscan = off")
            if ordered:
                await raw.execute("SET LOCAL enable_sort = off")
            rows = await raw.fetch(f"EXPLAIN {compiled.string}", *arguments)
    return "\n".join(row[0] for row in rows)


async def test_full_text_uses_the_gin_expression_index(
    collector: Collector, engine: AsyncEngine
) -> None:
    # Only the full-text condition: no other index could serve it.
    (condition,) = LogFilters(text='"weather in paris" tool').conditions()
    text = await plan(engine, select(logs.c.time).where(condition))
    assert "Bitmap Index Scan on logs_p" in text and "to_tsvector_idx" in text, text
    assert "Seq Scan" not in text, text


async def test_attribute_filters_use_the_gin_index(
    collector: Collector, engine: AsyncEngine
) -> None:
    condition = attribute_condition(spans.c.attributes, "http.status_code", "200")
    text = await plan(engine, select(spans.c.span_id).where(condition))
    assert "BitmapOr" in text and "attributes_idx" in text, text
    assert "Seq Scan" not in text, text


async def test_pages_resume_inside_the_index(collector: Collector, engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    window = (now - timedelta(hours=1), now)
    text = await plan(
        engine,
        log_search_query(1, LogFilters(), *window, 100, (now - timedelta(minutes=1), 5)),
        ordered=True,
    )
    assert "project_id_time_id_idx" in text and 'ROW("time", id) <' in text, text
    text = await plan(
        engine,
        trace_search_query(1, SpanFilters(), *window, 20, (now - timedelta(minutes=1), bytes(16))),
        ordered=True,
    )
    assert "project_id_start_time_trace_id_idx" in text, text
    assert "ROW(start_time, trace_id) <" in text, text
