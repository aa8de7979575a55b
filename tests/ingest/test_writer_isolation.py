"""Group commit: a request whose rows PostgreSQL refuses fails alone, never its flush-mates;
the connections the writer keeps between flushes are replaced when lost, not an outage."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import ensure_project
from app.config import Settings
from app.db.engine import create_engine
from app.db.partitions import PartitionManager
from app.ingest.native import decode_native_spans_steps
from app.ingest.offload import drive
from app.ingest.otlp_common import DecodeLimits
from app.ingest.rows import span_rows
from app.ingest.writer import GroupCommitWriter, TableRows, WriteRejected

HOUR_NS = 3600 * 10**9


def _rows(project_id: int, trace_id: str, count: int = 3) -> TableRows:
    """Rows of `count` valid spans, built by the real decoder and row builder."""
    now = time.time_ns()
    document = {
        "spans": [
            {
                "trace_id": trace_id,
                "span_id": f"{index + 1:016x}",
                "name": "step",
                "service": "isolation",
                "start_time": now / 1e9 - 60,
                "duration_ms": 5,
            }
            for index in range(count)
        ]
    }
    batch = drive(decode_native_spans_steps(document, DecodeLimits(now - HOUR_NS, now + HOUR_NS)))
    assert batch.rejected == 0
    return span_rows(project_id, batch.items)


async def test_one_refused_request_does_not_fail_the_others_in_its_flush(
    engine: AsyncEngine, db: asyncpg.Connection, database_url: str
) -> None:
    project_id = await ensure_project(engine, f"isolation-{uuid.uuid4().hex[:8]}")
    # The writer's own engine, as in the service: it changes its connections' jsonb codec,
    # which must not leak into the shared engine other tests read with.
    writer_engine = create_engine(Settings(database_url=database_url), database_url, pool_size=1)
    # One flusher: every write below is queued before it wakes, so they share one flush.
    writer = GroupCommitWriter(writer_engine, PartitionManager(writer_engine), flushers=1)
    await writer.start()
    try:
        good = [uuid.uuid4().hex for _ in range(4)]
        bad_trace = uuid.uuid4().hex
        bad = _rows(project_id, bad_trace)
        name = list(bad.columns).index("name")
        # NULL in a NOT NULL column: PostgreSQL refuses the COPY (a data error, not an outage).
        bad.rows[1] = (*bad.rows[1][:name], None, *bad.rows[1][name + 1 :])
        writes = [writer.write([_rows(project_id, trace_id)]) for trace_id in good[:2]]
        writes.append(writer.write([bad]))
        writes += [writer.write([_rows(project_id, trace_id)]) for trace_id in good[2:]]
        results = await asyncio.gather(*writes, return_exceptions=True)
    finally:
        await writer.stop()
        await writer_engine.dispose()

    assert [type(result) for result in results] == [
        type(None), type(None), WriteRejected, type(None), type(None)
    ]  # fmt: skip
    assert "refused" in str(results[2])
    stored = await db.fetch(
        "SELECT trace_id, count(*) AS spans FROM spans WHERE project_id = $1 GROUP BY trace_id",
        project_id,
    )
    assert {row["trace_id"].hex(): row["spans"] for row in stored} == dict.fromkeys(good, 3)


async def _backends(db: asyncpg.Connection, application_name: str) -> set[int]:
    rows = await db.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1", application_name
    )
    return {row["pid"] for row in rows}


async def test_a_connection_lost_between_flushes_is_replaced_without_an_error(
    engine: AsyncEngine, db: asyncpg.Connection, database_url: str
) -> None:
    project_id = await ensure_project(engine, f"writer-conn-{uuid.uuid4().hex[:8]}")
    # Its own name in pg_stat_activity: the shared collector's writer, running against the
    # same database, keeps its connections (and its workers' busy backends stay out of it).
    role = f"isolation-{uuid.uuid4().hex[:8]}"
    settings = Settings(database_url=database_url)
    writer_engine = create_engine(settings, database_url, pool_size=1, role=role)
    writer = GroupCommitWriter(writer_engine, PartitionManager(writer_engine), flushers=1)
    await writer.start()
    traces = [uuid.uuid4().hex for _ in range(4)]
    try:
        await writer.write([_rows(project_id, traces[0])])
        # The kept connection is the only one the writer's pool opened.
        before = await _backends(db, f"telemetry-collector/{role}")
        assert before
        # The server drops every connection (a restart, an idle timeout, a proxy); each is
        # gone from pg_stat_activity before the next write (the call waits up to 10 s).
        for pid in before:
            assert await db.fetchval("SELECT pg_terminate_backend($1, 10000)", pid)
        await writer.write([_rows(project_id, traces[1])])
        assert not writer.breaker.is_open
        after = await _backends(db, f"telemetry-collector/{role}")
        assert after and not after & before
        # A data error discards its connection too; the next write still goes through.
        bad = _rows(project_id, traces[2])
        name = list(bad.columns).index("name")
        bad.rows[0] = (*bad.rows[0][:name], None, *bad.rows[0][name + 1 :])
        try:
            await writer.write([bad])
            raise AssertionError("a NULL name was accepted")
        except WriteRejected:
            pass
        await writer.write([_rows(project_id, traces[3])])
    finally:
        await writer.stop()
        await writer_engine.dispose()
    stored = await db.fetch(
        "SELECT trace_id, count(*) AS spans FROM spans WHERE project_id = $1 GROUP BY trace_id",
        project_id,
    )
    assert {row["trace_id"].hex(): row["spans"] for row in stored} == {
        traces[0]: 3,
        traces[1]: 3,
        traces[3]: 3,
    }
