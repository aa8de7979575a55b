"""OTLP/gRPC on the collector's gRPC port: the SDK's gRPC exporters, and a raw grpcio client for
every answer the OTLP spec gives a gRPC server (app/grpc/)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from otlp_testkit import (
    SpanSpec,
    TcpProxy,
    new_span_id,
    new_trace_id,
    now_ns,
    simple_span,
    span_counts,
    stored_span_ids,
    traces_pb,
    via_proxy,
)
from prometheus_client.parser import text_string_to_metric_families
from support import Collector, metric_sum, table_locked, wait_for_lock_waiters, worker_pids

from app.grpc.status import retry_info

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
METRICS = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
Export = Callable[..., Any]


def _bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


@pytest.fixture
async def channel(collector: Collector) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(collector.grpc_target) as opened:
        yield opened


def _export(channel: grpc.aio.Channel, method: str = TRACES) -> Export:
    """The raw Export call: the request as bytes, the response decoded."""
    response = {
        TRACES: trace_service_pb2.ExportTraceServiceResponse,
        LOGS: logs_service_pb2.ExportLogsServiceResponse,
        METRICS: metrics_service_pb2.ExportMetricsServiceResponse,
    }[method]
    return channel.unary_unary(
        method, request_serializer=None, response_deserializer=response.FromString
    )


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


# ---------------------------------------------------------------- the OpenTelemetry SDK


def _recording(exporter: Any) -> list[Any]:
    """The results of the exporter's exports from now on (a failure shows in the test)."""
    results: list[Any] = []
    export = exporter.export

    def recording(*args: Any, **kwargs: Any) -> Any:
        results.append(export(*args, **kwargs))
        return results[-1]

    exporter.export = recording
    return results


async def test_sdk_span_exporter_over_grpc(
    collector: Collector, key: str, db: asyncpg.Connection, project_name: str
) -> None:
    exporter = OTLPSpanExporter(
        endpoint=f"http://{collector.grpc_target}",
        insecure=True,
        headers={"authorization": f"Bearer {key}"},
        compression=grpc.Compression.Gzip,
        timeout=15,
    )
    results = _recording(exporter)
    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.grpc")
    with tracer.start_as_current_span("turn", attributes={"assistant.turns": 2}) as root:
        with tracer.start_as_current_span("chat gpt-4o-mini") as child:
            child.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            child.set_attribute("gen_ai.usage.input_tokens", 120)
    provider.shutdown()
    assert results == [SpanExportResult.SUCCESS] * 2

    trace_id = format(root.get_span_context().trace_id, "032x")
    assert await stored_span_ids(db, project_name, [trace_id]) == sorted(
        format(span.get_span_context().span_id, "016x") for span in (root, child)
    )
    row = await db.fetchrow(
        "SELECT service_name, name, gen_ai_model, gen_ai_input_tokens FROM spans "
        "WHERE span_id = $1",
        child.get_span_context().span_id.to_bytes(8, "big"),
    )
    assert dict(row) == {
        "service_name": "grpc-agent",
        "name": "chat gpt-4o-mini",
        "gen_ai_model": "gpt-4o-mini",
        "gen_ai_input_tokens": 120,
    }


async def test_sdk_log_exporter_over_grpc(
    collector: Collector, make_key: Callable[..., Any], db: asyncpg.Connection, project_name: str
) -> None:
    # x-api-key instead of Authorization: both are read from the metadata.
    key = await make_key(project_name, "ingest")
    exporter = OTLPLogExporter(
        endpoint=f"http://{collector.grpc_target}", insecure=True, headers={"x-api-key": key}
    )
    results = _recording(exporter)
    provider = LoggerProvider(resource=Resource.create({"service.name": "grpc-logs"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    logger = logging.getLogger(f"tests.grpc.{project_name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("rate limited by %s", "openai", extra={"retry.count": 3})
        provider.force_flush()
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    assert results == [LogRecordExportResult.SUCCESS]

    rows = await db.fetch(
        "SELECT l.service_name, l.severity_text, l.body, l.attributes FROM logs l "
        "JOIN projects p ON p.id = l.project_id WHERE p.name = $1",
        project_name,
    )
    assert len(rows) == 1
    assert (rows[0]["service_name"], rows[0]["severity_text"]) == ("grpc-logs", "WARN")
    assert json.loads(rows[0]["body"]) == "rate limited by openai"
    assert json.loads(rows[0]["attributes"])["retry.count"] == 3


async def test_sdk_metric_exporter_over_grpc(
    collector: Collector, key: str, db: asyncpg.Connection, project_name: str
) -> None:
    exporter = OTLPMetricExporter(
        endpoint=f"http://{collector.grpc_target}", insecure=True, headers=_bearer(key)
    )
    results = _recording(exporter)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "grpc-metrics"}), metric_readers=[reader]
    )
    meter = provider.get_meter("tests.grpc")
    tokens = meter.create_counter("gen_ai.client.token.usage", unit="{token}")
    tokens.add(300, {"gen_ai.request.model": "gpt-4o-mini"})
    tokens.add(200, {"gen_ai.request.model": "gpt-4o-mini"})
    latency = meter.create_histogram("llm.latency", unit="ms")
    for value in (12, 40, 900):
        latency.record(value)
    assert provider.force_flush(timeout_millis=30_000)
    provider.shutdown()
    assert results and set(results) == {MetricExportResult.SUCCESS}

    rows = await db.fetch(
        "SELECT s.name, s.type, s.service_name, p.value, p.count, p.sum FROM metric_points p "
        "JOIN metric_series s USING (project_id, series_id) "
        "JOIN projects pr ON pr.id = p.project_id WHERE pr.name = $1 ORDER BY p.time",
        project_name,
    )
    latest = {row["name"]: dict(row) for row in rows}
    assert set(latest) == {"gen_ai.client.token.usage", "llm.latency"}
    assert latest["gen_ai.client.token.usage"]["type"] == "sum"
    assert latest["gen_ai.client.token.usage"]["value"] == 500.0
    assert (latest["llm.latency"]["type"], latest["llm.latency"]["count"]) == ("histogram", 3)
    assert latest["llm.latency"]["sum"] == 952.0
    assert {row["service_name"] for row in rows} == {"grpc-metrics"}


# ---------------------------------------------------------------- raw grpcio: the answers


async def test_invalid_data_is_invalid_argument(channel: grpc.aio.Channel, key: str) -> None:
    export = _export(channel)
    error = await _refused(export(b"\x0a\xff\xff\xff", metadata=_bearer(key), timeout=15))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details()
    assert retry_info(error.trailing_metadata()) is None
    # Not retryable: no delay offered, for the other signals either.
    for method in (LOGS, METRICS):
        error = await _refused(_export(channel, method)(b"\xff", metadata=_bearer(key)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, method


async def test_missing_or_wrong_key_is_unauthenticated(
    channel: grpc.aio.Channel, db: asyncpg.Connection, project_name: str, key: str
) -> None:
    body = traces_pb([simple_span()]).SerializeToString()
    export = _export(channel)
    error = await _refused(export(body, timeout=15))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "missing API key" in error.details()
    for metadata in (
        _bearer("tc_not-a-key"),
        (("x-api-key", "tc_not-a-key"),),
        (("authorization", f"Basic {key}"),),
    ):
        error = await _refused(export(body, metadata=metadata, timeout=15))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
        assert key not in error.details()


async def test_read_only_key_is_permission_denied(
    channel: grpc.aio.Channel, make_key: Callable[..., Any], project_name: str, db
) -> None:
    read_key = await make_key(project_name, "read")
    span = simple_span()
    body = traces_pb([span]).SerializeToString()
    error = await _refused(_export(channel)(body, metadata=_bearer(read_key), timeout=15))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "lacks the 'ingest' scope" in error.details()
    assert await span_counts(db, [span.trace_id]) == {}


async def test_partial_success_counts_the_rejected_spans(
    channel: grpc.aio.Channel, key: str, db: asyncpg.Connection, project_name: str
) -> None:
    good = simple_span()
    bad = SpanSpec("0" * 32, new_span_id(), "zero trace id", now_ns(), now_ns() + 1000)
    body = traces_pb([good, bad]).SerializeToString()
    response = await _export(channel)(body, metadata=_bearer(key), timeout=15)
    assert response.partial_success.rejected_spans == 1
    assert "trace" in response.partial_success.error_message
    assert await stored_span_ids(db, project_name, [good.trace_id]) == [good.span_id]

    everything_fine = await _export(channel)(
        traces_pb([simple_span()]).SerializeToString(), metadata=_bearer(key), timeout=15
    )
    assert not everything_fine.HasField("partial_success")


async def test_gzip_request_is_accepted(
    channel: grpc.aio.Channel, key: str, db: asyncpg.Connection, project_name: str
) -> None:
    trace_id = new_trace_id()
    spans = [simple_span(trace_id, name=f"step {n}") for n in range(50)]
    body = traces_pb(spans).SerializeToString()
    response = await _export(channel)(
        body, metadata=_bearer(key), compression=grpc.Compression.Gzip, timeout=15
    )
    assert not response.HasField("partial_success")
    assert await stored_span_ids(db, project_name, [trace_id]) == sorted(s.span_id for s in spans)


async def test_message_size_limit(
    start_collector: Callable[..., Collector], key: str, db: asyncpg.Connection
) -> None:
    limit = 200_000
    collector = start_collector(env={"TELEMETRY_MAX_DECOMPRESSED_BYTES": str(limit)})

    def body_of(size: int) -> tuple[SpanSpec, bytes]:
        span = simple_span()
        span.attributes = {"prompt": "x" * size}
        return span, traces_pb([span]).SerializeToString()

    fits, fitting = body_of(limit - 1000)
    over, oversize = body_of(limit + 1000)
    assert len(fitting) < limit < len(oversize)
    async with grpc.aio.insecure_channel(collector.grpc_target) as opened:
        export = _export(opened)
        await export(fitting, metadata=_bearer(key), timeout=15)
        for compression in (grpc.Compression.NoCompression, grpc.Compression.Gzip):
            # Compressed, the message is a few hundred bytes: the limit is on what it inflates to.
            error = await _refused(
                export(oversize, metadata=_bearer(key), compression=compression, timeout=15)
            )
            # gRPC's own answer, before the handler: without RetryInfo, exporters drop it.
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, compression
            assert "larger than max" in error.details(), error.details()
            assert retry_info(error.trailing_metadata()) is None
    assert await span_counts(db, [fits.trace_id, over.trace_id]) == {fits.trace_id: 1}


async def test_database_down_is_unavailable_with_retry_info(
    proxy: TcpProxy,
    database_url: str,
    start_collector: Callable[..., Collector],
    key: str,
    make_key: Callable[..., Any],
    project_name: str,
    db: asyncpg.Connection,
) -> None:
    collector = start_collector(
        database_url=via_proxy(database_url, proxy.port),
        env={"TELEMETRY_DB_CONNECT_TIMEOUT_S": "2", "TELEMETRY_RETRY_AFTER_S": "7"},
    )
    fresh_key = await make_key(project_name, "ingest")
    async with grpc.aio.insecure_channel(collector.grpc_target) as opened:
        export = _export(opened)
        await export(traces_pb([simple_span()]).SerializeToString(), metadata=_bearer(key))

        proxy.stop()
        refused = []
        # A key already checked (the write fails), and one never seen (its check fails).
        for presented in (key, fresh_key):
            span = simple_span()
            error = await _refused(
                export(traces_pb([span]).SerializeToString(), metadata=_bearer(presented))
            )
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
            assert "database is unavailable" in error.details()
            info = retry_info(error.trailing_metadata())
            assert info is not None and info.retry_delay.seconds == 7
            # Also alone in the trailer the Python SDK's exporter reads.
            alone = dict(error.trailing_metadata())["google.rpc.retryinfo-bin"]
            assert RetryInfo.FromString(alone) == info
            refused.append(span.trace_id)

        proxy.start()
        deadline = time.monotonic() + 30
        while True:
            span = simple_span()
            try:
                await export(traces_pb([span]).SerializeToString(), metadata=_bearer(key))
                break
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                assert time.monotonic() < deadline, "never recovered"
                await asyncio.sleep(0.25)
    stored = await span_counts(db, [*refused, span.trace_id])
    assert stored == {span.trace_id: 1}


async def test_saturated_writer_is_unavailable_with_retry_info(
    start_collector: Callable[..., Collector], make_key: Callable[..., Any], db
) -> None:
    collector = start_collector(env={"TELEMETRY_WRITER_MAX_QUEUED_ROWS": "600"})
    key = await make_key(f"grpc-pressure-{uuid.uuid4().hex[:6]}", "ingest")
    answers: dict[str, grpc.StatusCode] = {}
    delays: set[int] = set()

    async with grpc.aio.insecure_channel(collector.grpc_target) as opened:
        export = _export(opened)

        async def send() -> None:
            trace_id = new_trace_id()
            body = traces_pb([simple_span(trace_id) for _ in range(512)]).SerializeToString()
            try:
                await export(body, metadata=_bearer(key), timeout=60)
                answers[trace_id] = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as error:
                answers[trace_id] = error.code()
                info = retry_info(error.trailing_metadata())
                delays.add(info.retry_delay.seconds if info else -1)

        for _ in range(10):
            await asyncio.gather(*(send() for _ in range(12)))
            if grpc.StatusCode.UNAVAILABLE in answers.values():
                break

    refused = {t for t, code in answers.items() if code == grpc.StatusCode.UNAVAILABLE}
    accepted = {t for t, code in answers.items() if code == grpc.StatusCode.OK}
    assert refused, "no call was refused; the queue bound did not apply"
    assert accepted and refused | accepted == set(answers)
    assert delays == {5}
    stored = await span_counts(db, answers)
    assert {trace_id: stored.get(trace_id) for trace_id in accepted} == dict.fromkeys(accepted, 512)
    assert not refused & set(stored)


async def test_grpc_can_be_turned_off(start_collector: Callable[..., Collector]) -> None:
    collector = start_collector(env={"TELEMETRY_GRPC_ENABLED": "false"})
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", collector.grpc_port), timeout=5).close()
    async with httpx.AsyncClient(base_url=collector.url) as http:
        assert (await http.get("/healthz")).status_code == 200


def _listening_on(port: int) -> set[str]:
    """Inodes of the sockets listening on `port` (Linux /proc/net/tcp and tcp6: gRPC binds
    127.0.0.1 as the v4-mapped ::ffff:127.0.0.1 of an IPv6 socket)."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        pytest.skip("finding each worker's sockets needs Linux /proc")
    inodes = set()
    for table in tables:
        lines = table.read_text().splitlines()[1:] if table.exists() else []
        for line in lines:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
                inodes.add(fields[9])
    return inodes


def _holds(pid: int, inodes: set[str]) -> bool:
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


async def test_every_worker_serves_grpc(
    start_collector: Callable[..., Collector], key: str, db: asyncpg.Connection
) -> None:
    collector = start_collector(workers=2)
    assert collector.process is not None
    # Each worker listens on the gRPC port with a socket of its own (SO_REUSEPORT).
    deadline = time.monotonic() + 30
    while True:
        workers = worker_pids(collector.process.pid)
        inodes = _listening_on(collector.grpc_port)
        if len(workers) == 2 and all(_holds(pid, inodes) for pid in workers):
            break
        assert time.monotonic() < deadline, (workers, inodes)
        await asyncio.sleep(0.1)
    assert len(inodes) == 2
    trace_ids = []
    # New connections are spread over the workers' SO_REUSEPORT sockets by hash.
    for _ in range(8):
        async with grpc.aio.insecure_channel(collector.grpc_target) as opened:
            span = simple_span()
            await _export(opened)(
                traces_pb([span]).SerializeToString(), metadata=_bearer(key), timeout=15
            )
            trace_ids.append(span.trace_id)
    assert await span_counts(db, trace_ids) == dict.fromkeys(trace_ids, 1)
    async with httpx.AsyncClient(base_url=collector.url) as http:
        text = (await http.get("/metrics")).text
    assert _sample(text, "telemetry_ingest_requests", signal="traces", protocol="grpc") == 8


def _sample(text: str, family: str, **labels: str) -> float:
    total = 0.0
    for found in text_string_to_metric_families(text):
        if found.name != family:
            continue
        for sample in found.samples:
            if sample.name.endswith("_total") or sample.name.endswith("_count"):
                if all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
    return total


async def test_grpc_calls_are_counted_in_metrics(
    channel: grpc.aio.Channel, collector: Collector, key: str
) -> None:
    async with httpx.AsyncClient(base_url=collector.url) as http:
        before = (await http.get("/metrics")).text
        await _export(channel)(
            traces_pb([simple_span()]).SerializeToString(), metadata=_bearer(key)
        )
        await _refused(_export(channel)(b"\xff", metadata=_bearer(key)))
        after = (await http.get("/metrics")).text
    for outcome in ("ok", "rejected"):
        labels = {"signal": "traces", "protocol": "grpc", "outcome": outcome}
        grew = _sample(after, "telemetry_ingest_requests", **labels) - _sample(
            before, "telemetry_ingest_requests", **labels
        )
        assert grew == 1, outcome
    for code in ("OK", "INVALID_ARGUMENT"):
        labels = {"method": TRACES, "code": code}
        grew = _sample(after, "telemetry_grpc_request_duration_seconds", **labels) - _sample(
            before, "telemetry_grpc_request_duration_seconds", **labels
        )
        assert grew == 1, code


class _Streamed:
    """What concurrent gRPC senders saw: the span ids of OK calls, the codes of the others."""

    def __init__(self, target: int) -> None:
        self.acked: list[SpanSpec] = []
        self.failed: list[SpanSpec] = []
        self.codes: list[grpc.StatusCode] = []
        self.lock = threading.Lock()
        self.enough = threading.Event()
        self.target = target

    def send_until_refused(self, address: str, key: str) -> None:
        with grpc.insecure_channel(address) as opened:
            export = opened.unary_unary(
                TRACES,
                request_serializer=None,
                response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
            )
            while True:
                trace_id = new_trace_id()
                spans = [simple_span(trace_id, name=f"step {n}") for n in range(25)]
                try:
                    export(traces_pb(spans).SerializeToString(), metadata=_bearer(key), timeout=30)
                except grpc.RpcError as error:
                    with self.lock:
                        self.failed.extend(spans)
                        self.codes.append(error.code())
                    return
                with self.lock:
                    self.acked.extend(spans)
                    if len(self.acked) >= self.target * 25:
                        self.enough.set()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
async def test_no_acknowledged_call_is_lost_when_the_collector_stops(
    start_collector: Callable[..., Collector],
    key: str,
    db: asyncpg.Connection,
    project_name: str,
    how: str,
) -> None:
    victim = start_collector()
    streamed = _Streamed(target=100)
    senders = [
        threading.Thread(
            target=streamed.send_until_refused, args=(victim.grpc_target, key), daemon=True
        )
        for _ in range(4)
    ]
    for sender in senders:
        sender.start()
    assert await asyncio.to_thread(streamed.enough.wait, 60)
    await asyncio.to_thread(victim.stop if how == "SIGTERM" else victim.kill)
    for sender in senders:
        await asyncio.to_thread(sender.join, 30)
    assert not any(sender.is_alive() for sender in senders)
    assert len(streamed.codes) == len(senders)
    # Every sender's last call met a stopped server: retryable, never a bug's UNKNOWN.
    assert set(streamed.codes) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    if how == "SIGTERM":
        assert victim.process is not None and victim.process.returncode == 0
    trace_ids = {span.trace_id for span in streamed.acked + streamed.failed}
    stored = await stored_span_ids(db, project_name, trace_ids)
    acked = sorted(span.span_id for span in streamed.acked)
    failed_stored = set(stored) - set(acked)
    # Everything acknowledged is stored; a call in flight is stored whole or not at all.
    assert set(acked) <= set(stored) and len(stored) == len(set(stored))
    assert len(failed_stored) % 25 == 0


@pytest.mark.parametrize("workers", [1, 2])
async def test_grpc_port_held_by_another_program_fails_startup(
    start_collector: Callable[..., Collector], workers: int
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        with pytest.raises(RuntimeError, match="collector exited") as raised:
            start_collector(env={"TELEMETRY_GRPC_PORT": str(port)}, workers=workers)
    assert f"cannot listen for OTLP/gRPC on 127.0.0.1:{port}" in str(raised.value)


async def test_full_inflight_budget_is_unavailable_with_retry_info(
    start_collector: Callable[..., Collector], key: str, db: asyncpg.Connection
) -> None:
    # A 60 KB message holds 11 times its size (itself plus the decoded estimate) of the
    # 1 MB budget while it is decoded and committed: two at once do not fit.
    collector = start_collector(env={"TELEMETRY_MAX_INFLIGHT_BYTES": "1000000"})
    answers: dict[str, tuple[grpc.StatusCode, str, int | None]] = {}

    async with grpc.aio.insecure_channel(collector.grpc_target) as opened:
        export = _export(opened)

        async def send() -> None:
            trace_id = new_trace_id()
            spans = [simple_span(trace_id, name=f"step {n} " + "x" * 200) for n in range(200)]
            try:
                await export(traces_pb(spans).SerializeToString(), metadata=_bearer(key))
                answers[trace_id] = (grpc.StatusCode.OK, "", None)
            except grpc.aio.AioRpcError as error:
                info = retry_info(error.trailing_metadata())
                delay = info.retry_delay.seconds if info else None
                answers[trace_id] = (error.code(), error.details(), delay)

        for _ in range(10):
            await asyncio.gather(*(send() for _ in range(8)))
            if any(code != grpc.StatusCode.OK for code, _, _ in answers.values()):
                break

    refused = {t: answer for t, answer in answers.items() if answer[0] != grpc.StatusCode.OK}
    assert refused, "no call was refused; the in-flight budget did not apply"
    for code, details, delay in refused.values():
        assert (code, delay) == (grpc.StatusCode.UNAVAILABLE, 5)
        assert "collector is saturated" in details
    stored = await span_counts(db, answers)
    accepted = set(answers) - set(refused)
    assert accepted and {t: stored.get(t) for t in accepted} == dict.fromkeys(accepted, 200)
    assert not set(refused) & set(stored)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.retrying = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        self.lines.append(line)
        if "retrying in" in line:
            self.retrying.set()


async def test_sdk_exporter_waits_the_retry_info_delay_then_succeeds(
    proxy: TcpProxy,
    database_url: str,
    start_collector: Callable[..., Collector],
    key: str,
    db: asyncpg.Connection,
    project_name: str,
) -> None:
    collector = start_collector(
        database_url=via_proxy(database_url, proxy.port),
        env={"TELEMETRY_DB_CONNECT_TIMEOUT_S": "2", "TELEMETRY_RETRY_AFTER_S": "3"},
    )
    exporter = OTLPSpanExporter(
        endpoint=f"http://{collector.grpc_target}",
        insecure=True,
        headers={"authorization": f"Bearer {key}"},
        timeout=60,
    )
    results = _recording(exporter)
    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-retry"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.grpc")
    with tracer.start_as_current_span("warm up"):
        pass  # the key is checked and cached while the database is there
    proxy.stop()
    lines = _Lines()
    exporter_log = logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter")
    exporter_log.addHandler(lines)
    try:

        def during_outage() -> int:
            with tracer.start_as_current_span("during the outage") as span:
                pass
            return span.get_span_context().trace_id

        exporting = asyncio.ensure_future(asyncio.to_thread(during_outage))
        assert await asyncio.to_thread(lines.retrying.wait, 30), lines.lines
        proxy.start()
        trace_id = format(await exporting, "032x")
    finally:
        exporter_log.removeHandler(lines)
        provider.shutdown()
    # The SDK waited the collector's delay (3 s), not its own first backoff (0.8-1.2 s).
    retries = [line for line in lines.lines if "retrying in" in line]
    assert "UNAVAILABLE" in retries[0] and "retrying in 3.00s" in retries[0], retries
    assert results == [SpanExportResult.SUCCESS] * 2, lines.lines
    assert await span_counts(db, [trace_id]) == {trace_id: 1}


async def test_attribute_caps_are_the_http_ones(
    channel: grpc.aio.Channel, key: str, db: asyncpg.Connection, project_name: str
) -> None:
    span = simple_span()
    span.attributes = {f"extra.{n:03d}": n for n in range(200)}
    span.attributes["extra.000"] = "y" * 20_000
    await _export(channel)(traces_pb([span]).SerializeToString(), metadata=_bearer(key))
    row = await db.fetchrow(
        "SELECT attributes, dropped_attributes_count FROM spans WHERE span_id = $1",
        bytes.fromhex(span.span_id),
    )
    attributes = json.loads(row["attributes"])
    # TELEMETRY_MAX_ATTRIBUTES (128) and TELEMETRY_MAX_ATTRIBUTE_VALUE_CHARS (16384).
    assert len(attributes) == 128 and row["dropped_attributes_count"] == 72
    assert attributes["extra.000"] == "y" * 16384


async def test_percent_encoded_bearer_is_accepted(
    channel: grpc.aio.Channel, key: str, db: asyncpg.Connection, project_name: str
) -> None:
    # Older SDKs send OTEL_EXPORTER_OTLP_HEADERS values undecoded, as over HTTP.
    span = simple_span()
    metadata = (("authorization", f"Bearer%20{key}"),)
    await _export(channel)(traces_pb([span]).SerializeToString(), metadata=metadata)
    assert await stored_span_ids(db, project_name, [span.trace_id]) == [span.span_id]


async def test_without_auth_calls_go_to_the_default_project(
    start_collector: Callable[..., Collector], db: asyncpg.Connection
) -> None:
    collector = start_collector(env={"TELEMETRY_AUTH_ENABLED": "false"})
    span = simple_span()
    async with grpc.aio.insecure_channel(collector.grpc_target) as opened:
        await _export(opened)(traces_pb([span]).SerializeToString(), timeout=15)
    assert await stored_span_ids(db, "default", [span.trace_id]) == [span.span_id]


async def test_a_call_whose_deadline_passes_while_queued_is_dropped(
    start_collector: Callable[..., Collector],
    make_key: Callable[..., Any],
    project_name: str,
    database_url: str,
    db: asyncpg.Connection,
) -> None:
    """A client that gives up (deadline) while its batch waits for the writer: the call ends
    CANCELLED on the server, counted as disconnected, and nothing of it is committed; calls
    still waiting are committed and acknowledged (as over HTTP, tests/api/test_disconnect.py)."""
    collector = start_collector(
        env={"TELEMETRY_DB_STATEMENT_TIMEOUT_S": "60", "TELEMETRY_WORKERS_ENABLED": "false"}
    )
    key = await make_key(project_name, "ingest")
    kept = [simple_span(), simple_span()]
    given_up = simple_span()

    async with grpc.aio.insecure_channel(collector.grpc_target) as opened:
        export = _export(opened)
        async with table_locked(database_url, "spans"):
            answered = []
            for count, span in enumerate(kept, start=1):
                body = traces_pb([span]).SerializeToString()
                answered.append(asyncio.ensure_future(export(body, metadata=_bearer(key))))
                await wait_for_lock_waiters(db, count)  # each flusher holds one, none free
            call = export(
                traces_pb([given_up]).SerializeToString(), metadata=_bearer(key), timeout=1.5
            )
            error = await _refused(call)
            assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            await asyncio.sleep(0.5)  # the server's side of the call ends too
        for task in answered:
            await task  # committed after all, and acknowledged
        async with httpx.AsyncClient(base_url=collector.url) as http:
            metrics = (await http.get("/metrics")).text
    disconnected = metric_sum(
        metrics, "telemetry_ingest_requests_total", protocol="grpc", outcome="disconnected"
    )
    assert disconnected == 1
    assert await stored_span_ids(db, project_name, [s.trace_id for s in kept]) == sorted(
        s.span_id for s in kept
    )
    assert await stored_span_ids(db, project_name, [given_up.trace_id]) == []


@pytest.mark.parametrize(
    "metadata",
    [
        (("authorization", "Bearer "),),
        (("authorization", "Basic dXNlcjpwYXNz"),),
        (("x-api-key", "tc_'; DROP TABLE spans; --%00"),),
        (("authorization", "Bearer " + "a" * 9000),),
        (("authorization", "Bearer " + "b" * 12000),),
        (("x-api-key", "c" * 40000),),
        (("authorization-bin", b"\xff\xfe"),),
    ],
)
async def test_hostile_credentials_are_unauthenticated(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, Any], ...]
) -> None:
    """Credentials a client can send get UNAUTHENTICATED with a reason, never INTERNAL (the
    HTTP side answers 401 for the same headers). Non-ASCII values are not among them: gRPC's
    core refuses them on both ends (validate_metadata), before any handler runs."""
    call = _export(channel)(traces_pb([simple_span()]).SerializeToString(), metadata=metadata)
    error = await _refused(call)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error.details()
    assert error.details()
