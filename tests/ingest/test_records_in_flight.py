"""A request waiting for its commit holds rows, not decoded records.

Under overload many requests wait for the writer at once; the OTLP stores hand the
records on (`DecodedBatch.take`) and drop them once their rows are built, so a waiting span
costs its row only (1,995 instead of 2,668 bytes, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid

import asyncpg
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from otlp_testkit import simple_span, traces_pb
from sqlalchemy.ext.asyncio import AsyncEngine
from support import table_locked, wait_for_lock_waiters

from app.auth import ensure_project
from app.config import Settings
from app.db.engine import create_engine
from app.db.partitions import PartitionManager
from app.domain.logs import LogRecord
from app.domain.records import DecodedBatch, SpanRecord
from app.ingest.enrich import Enricher
from app.ingest.offload import Offload, drive
from app.ingest.otlp_common import DecodeLimits
from app.ingest.otlp_logs import decode_logs_protobuf_steps
from app.ingest.otlp_traces import decode_traces_protobuf_steps
from app.ingest.store import store_spans
from app.ingest.store_logs import store_logs
from app.ingest.writer import GroupCommitWriter

HOUR_NS = 3600 * 10**9
ITEMS = 300


def _alive(kind: type) -> int:
    gc.collect()
    return sum(1 for item in gc.get_objects() if type(item) is kind)


def _spans(trace_id: str) -> bytes:
    return traces_pb(
        [simple_span(trace_id, age_ns=60 * 10**9) for _ in range(ITEMS)]
    ).SerializeToString()


def _logs(trace_id: str) -> bytes:
    time_ns = time.time_ns() - 60 * 10**9
    records = [
        logs_pb2.LogRecord(
            time_unix_nano=time_ns,
            severity_number=9,
            body=common_pb2.AnyValue(string_value=f"line {index}"),
            trace_id=bytes.fromhex(trace_id),
        )
        for index in range(ITEMS)
    ]
    return logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[logs_pb2.ResourceLogs(scope_logs=[logs_pb2.ScopeLogs(log_records=records)])]
    ).SerializeToString()


SIGNALS = {
    "spans": (_spans, decode_traces_protobuf_steps, store_spans, SpanRecord),
    "logs": (_logs, decode_logs_protobuf_steps, store_logs, LogRecord),
}


@pytest.mark.parametrize("table", SIGNALS)
async def test_items_waiting_for_their_commit_are_rows_only(
    table: str, engine: AsyncEngine, db: asyncpg.Connection, database_url: str
) -> None:
    body_of, decode, store, record = SIGNALS[table]
    project_id = await ensure_project(engine, f"in-flight-{uuid.uuid4().hex[:8]}")
    trace_id = uuid.uuid4().hex
    now = time.time_ns()
    limits = DecodeLimits(now - HOUR_NS, now + HOUR_NS)
    writer_engine = create_engine(
        Settings(database_url=database_url), database_url, pool_size=1, role="writer"
    )
    writer = GroupCommitWriter(writer_engine, PartitionManager(writer_engine), flushers=1)
    await writer.start()
    offload = Offload()
    try:
        before = _alive(record)
        batch = drive(decode(body_of(trace_id), limits))
        assert batch.accepted == ITEMS and not batch.rejected
        assert _alive(record) == before + ITEMS

        enricher = Enricher.from_settings(Settings())
        async with table_locked(database_url, table):
            storing = asyncio.create_task(
                store(writer, enricher, project_id, batch.take(), offload)
            )
            await wait_for_lock_waiters(db, 1)  # the writer's COPY waits for the lock
            # The request waits for its commit: its records are gone, their count is kept.
            assert not storing.done()
            assert _alive(record) == before
            assert batch.accepted == ITEMS and batch.items == []
        await asyncio.wait_for(storing, 10)
    finally:
        offload.close()
        await writer.stop()
        await writer_engine.dispose()

    stored = await db.fetchval(
        f"SELECT count(*) FROM {table} WHERE project_id = $1 AND trace_id = $2",  # noqa: S608
        project_id,
        bytes.fromhex(trace_id),
    )
    assert stored == ITEMS


def test_spans_without_events_or_links_share_the_empty_tuple() -> None:
    now = time.time_ns()
    batch = drive(
        decode_traces_protobuf_steps(
            _spans(uuid.uuid4().hex), DecodeLimits(now - HOUR_NS, now + HOUR_NS)
        )
    )
    assert all(span.events == () and span.links == () for span in batch.items)
    assert not gc.is_tracked(batch.items[0].events)


def test_take_hands_the_items_on_and_keeps_their_count() -> None:
    records = [object(), object()]
    batch = DecodedBatch(list(records))
    batch.reject("bad")
    assert batch.take() == records
    assert batch.items == [] and batch.accepted == 2 and batch.rejected == 1
    batch.items.append(object())
    assert batch.accepted == 3
