"""The partition-maintenance job: fresh partitions get statistics, rewritten ones a VACUUM.

A database of its own, where no collector runs jobs: what is found maintained was done by
the call under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from support import fresh_database

from app.config import Settings
from app.db.engine import asyncpg_dsn, create_engine
from app.db.partitions import PartitionManager, partition_name
from app.workers.partition_stats import maintain_partitions


@pytest.fixture
def quiet_url(server_url: str) -> Iterator[str]:
    with fresh_database(server_url) as url:
        yield url


@pytest.fixture
async def quiet(quiet_url: str) -> AsyncIterator[tuple[AsyncEngine, str]]:
    engine = create_engine(Settings(database_url=quiet_url), quiet_url, pool_size=1)
    yield engine, quiet_url
    await engine.dispose()


async def _stats(url: str, name: str) -> asyncpg.Record:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await connection.fetchrow(
            "SELECT s.n_mod_since_analyze, s.n_dead_tup, s.last_analyze, s.last_vacuum,"
            " c.reltuples FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid"
            " WHERE s.relname = $1",
            name,
        )
    finally:
        await connection.close()


async def _write(url: str, sql: str, *args: object) -> None:
    # Its own connection, closed after: the backend then reports its row counts at once.
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute(sql, *args)
    finally:
        await connection.close()


# Catalog rows n = $2..$3 of today's partition, spread over its first 1,000 minutes.
_INSERT_OPERATIONS = (
    "INSERT INTO span_operations SELECT 1, $1::timestamptz + make_interval(mins => n % 1000),"
    " 'svc', 'op' || n, 1, 1, 0, true FROM generate_series($2::int, $3::int) AS n"
)


def _midnight() -> datetime:
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC)


async def _operations_partition(engine: AsyncEngine, url: str) -> str:
    """Today's span_operations partition, created empty, autovacuum off (it would race the
    job under test)."""
    today = datetime.now(UTC).date()
    await PartitionManager(engine).ensure("span_operations", [today])
    name = partition_name("span_operations", today)
    await _write(url, f'ALTER TABLE "{name}" SET (autovacuum_enabled = false)')
    return name


async def test_fresh_rows_are_analyzed_and_rewritten_rows_vacuumed(
    quiet: tuple[AsyncEngine, str],
) -> None:
    engine, url = quiet
    name = await _operations_partition(engine, url)
    await _write(url, _INSERT_OPERATIONS, _midnight(), 1, 5000)
    stats = await _stats(url, name)
    assert stats["reltuples"] < 0 and stats["n_mod_since_analyze"] >= 5000  # never analyzed

    assert await maintain_partitions(engine) == [f'ANALYZE "{name}"']
    stats = await _stats(url, name)
    assert stats["last_analyze"] is not None and stats["reltuples"] == 5000
    assert await maintain_partitions(engine, analyze_every_s=0) == []  # nothing changed since

    # Rewritten rows (as upserts and compaction do) leave dead ones: VACUUM, and ANALYZE
    # once the last one is old enough.
    await _write(url, "UPDATE span_operations SET span_count = span_count + 1")
    assert (await _stats(url, name))["n_dead_tup"] >= 5000
    assert await maintain_partitions(engine, analyze_every_s=0) == [f'VACUUM (ANALYZE) "{name}"']
    stats = await _stats(url, name)
    assert stats["last_vacuum"] is not None and stats["n_dead_tup"] == 0
    assert await maintain_partitions(engine, analyze_every_s=0) == []

    # A few changes are left to the next rounds.
    await _write(url, "UPDATE span_operations SET span_count = 0 WHERE name = 'op1'")
    assert await maintain_partitions(engine, analyze_every_s=0) == []


async def test_a_filling_partition_is_analyzed_at_most_once_a_minute(
    quiet: tuple[AsyncEngine, str],
) -> None:
    """A partition that grows by a fifth in every round is analyzed once, then again only
    when its last ANALYZE is ANALYZE_EVERY_S old; a VACUUM it needs is not held back."""
    engine, url = quiet
    name = await _operations_partition(engine, url)
    await _write(url, _INSERT_OPERATIONS, _midnight(), 1, 5000)
    assert await maintain_partitions(engine) == [f'ANALYZE "{name}"']
    analyzed = (await _stats(url, name))["last_analyze"]

    # Doubled: stale by the share alone.
    await _write(url, _INSERT_OPERATIONS, _midnight(), 5001, 10000)
    assert await maintain_partitions(engine) == []
    assert (await _stats(url, name))["last_analyze"] == analyzed
    await _write(url, "UPDATE span_operations SET span_count = span_count + 1")
    assert await maintain_partitions(engine) == [f'VACUUM "{name}"']
    assert (await _stats(url, name))["last_analyze"] == analyzed

    # Once the last ANALYZE is old enough (here: a second), the next round takes it.
    await asyncio.sleep(1.1)
    assert await maintain_partitions(engine, analyze_every_s=1) == [f'ANALYZE "{name}"']
    stats = await _stats(url, name)
    assert stats["last_analyze"] > analyzed and stats["reltuples"] == 10000


async def test_appended_error_events_are_vacuumed(quiet: tuple[AsyncEngine, str]) -> None:
    """Error events are only appended, yet VACUUMed as they grow: the overview counts a
    window's events from the index alone once the pages are all-visible."""
    engine, url = quiet
    today = datetime.now(UTC).date()
    await PartitionManager(engine).ensure("error_events", [today])
    name = partition_name("error_events", today)
    await _write(url, f'ALTER TABLE "{name}" SET (autovacuum_enabled = false)')
    insert = (
        "INSERT INTO error_events SELECT 1, int8send(n), 'f', $1::timestamptz, 's', 't', 'm',"
        " '', '', 'span', NULL, NULL, '{}' FROM generate_series(1, 3000) AS n"
    )
    await _write(url, insert, datetime(today.year, today.month, today.day, tzinfo=UTC))
    assert await maintain_partitions(engine) == [f'VACUUM (ANALYZE) "{name}"']
    assert (await _stats(url, name))["last_vacuum"] is not None
    assert await maintain_partitions(engine) == []
