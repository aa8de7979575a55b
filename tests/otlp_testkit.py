"""Helpers for the OTLP ingest tests: span builders (JSON and protobuf), DB checks, a TCP proxy."""

from __future__ import annotations

import gzip
import os
import select
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from sqlalchemy.engine import make_url
from support import free_port

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
NANOS_PER_SECOND = 1_000_000_000
HOUR_NS = 3600 * NANOS_PER_SECOND
DAY_NS = 24 * HOUR_NS


def new_trace_id() -> str:
    return os.urandom(16).hex()


def new_span_id() -> str:
    return os.urandom(8).hex()


def now_ns() -> int:
    return time.time_ns()


def parse_time(value: str) -> datetime:
    """An RFC 3339 response time (with `Z`) → an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def time_of(unix_nano: int) -> datetime:
    """What the collector stores: microsecond precision, UTC."""
    return datetime.fromtimestamp(unix_nano // 1000 / 1_000_000, tz=UTC)


@dataclass
class SpanSpec:
    """One span, renderable as OTLP JSON or protobuf. Ids are hex (of any length)."""

    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    parent_span_id: str = ""
    kind: int = 1
    attributes: dict[str, Any] = field(default_factory=dict)
    status_code: int = 0
    status_message: str = ""


def simple_span(
    trace_id: str | None = None, *, name: str = "op", age_ns: int = 0, duration_ns: int = 5_000_000
) -> SpanSpec:
    start = now_ns() - age_ns
    return SpanSpec(
        trace_id=trace_id or new_trace_id(),
        span_id=new_span_id(),
        name=name,
        start_ns=start,
        end_ns=start + duration_ns,
    )


# ---------------------------------------------------------------- OTLP JSON


def value_json(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [value_json(item) for item in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": attributes_json(value)}}
    raise TypeError(f"no AnyValue for {type(value).__name__}")


def attributes_json(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": value_json(value)} for key, value in attributes.items()]


def span_json(span: SpanSpec) -> dict[str, Any]:
    document: dict[str, Any] = {
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "name": span.name,
        "kind": span.kind,
        "startTimeUnixNano": str(span.start_ns),
        "endTimeUnixNano": str(span.end_ns),
        "attributes": attributes_json(span.attributes),
    }
    if span.parent_span_id:
        document["parentSpanId"] = span.parent_span_id
    if span.status_code or span.status_message:
        document["status"] = {"code": span.status_code, "message": span.status_message}
    return document


def traces_json(
    spans: Iterable[SpanSpec], service: str = "checkout", scope: str = "tests.otlp"
) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attributes_json({"service.name": service})},
                "scopeSpans": [
                    {
                        "scope": {"name": scope, "version": "0.1.0"},
                        "spans": [span_json(span) for span in spans],
                    }
                ],
            }
        ]
    }


# ---------------------------------------------------------------- OTLP protobuf


def value_pb(value: Any) -> common_pb2.AnyValue:
    if isinstance(value, bool):
        return common_pb2.AnyValue(bool_value=value)
    if isinstance(value, int):
        return common_pb2.AnyValue(int_value=value)
    if isinstance(value, float):
        return common_pb2.AnyValue(double_value=value)
    if isinstance(value, str):
        return common_pb2.AnyValue(string_value=value)
    if isinstance(value, bytes):
        return common_pb2.AnyValue(bytes_value=value)
    if isinstance(value, (list, tuple)):
        return common_pb2.AnyValue(
            array_value=common_pb2.ArrayValue(values=[value_pb(item) for item in value])
        )
    if isinstance(value, dict):
        return common_pb2.AnyValue(
            kvlist_value=common_pb2.KeyValueList(values=attributes_pb(value))
        )
    raise TypeError(f"no AnyValue for {type(value).__name__}")


def attributes_pb(attributes: dict[str, Any]) -> list[common_pb2.KeyValue]:
    return [
        common_pb2.KeyValue(key=key, value=value_pb(value)) for key, value in attributes.items()
    ]


def span_pb(span: SpanSpec) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=bytes.fromhex(span.trace_id),
        span_id=bytes.fromhex(span.span_id),
        parent_span_id=bytes.fromhex(span.parent_span_id),
        name=span.name,
        kind=span.kind,  # type: ignore[arg-type]
        start_time_unix_nano=span.start_ns,
        end_time_unix_nano=span.end_ns,
        attributes=attributes_pb(span.attributes),
        status=trace_pb2.Status(code=span.status_code, message=span.status_message),  # type: ignore[arg-type]
    )


def traces_pb(
    spans: Iterable[SpanSpec], service: str = "checkout", scope: str = "tests.otlp"
) -> trace_service_pb2.ExportTraceServiceRequest:
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource_pb2.Resource(attributes=attributes_pb({"service.name": service})),
                scope_spans=[
                    trace_pb2.ScopeSpans(
                        scope=common_pb2.InstrumentationScope(name=scope, version="0.1.0"),
                        spans=[span_pb(span) for span in spans],
                    )
                ],
            )
        ]
    )


def decode_export_response(body: bytes) -> trace_service_pb2.ExportTraceServiceResponse:
    return trace_service_pb2.ExportTraceServiceResponse.FromString(body)


# ---------------------------------------------------------------- compression


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data)


def zlib_bytes(data: bytes) -> bytes:
    return zlib.compress(data)


def raw_deflate_bytes(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def gzip_bomb(decompressed_bytes: int, chunk: int = 1024 * 1024) -> bytes:
    """`decompressed_bytes` of zeros, gzipped in chunks so the test never holds them whole."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(chunk)
    parts: list[bytes] = []
    remaining = decompressed_bytes
    while remaining > 0:
        step = min(chunk, remaining)
        parts.append(compressor.compress(zeros[:step]))
        remaining -= step
    parts.append(compressor.flush())
    return b"".join(parts)


# ---------------------------------------------------------------- database checks


async def project_id(db: asyncpg.Connection, name: str) -> int:
    value = await db.fetchval("SELECT id FROM projects WHERE name = $1", name)
    assert value is not None, f"project {name!r} does not exist"
    return int(value)


async def span_counts(db: asyncpg.Connection, trace_ids: Iterable[str]) -> dict[str, int]:
    """Stored spans per trace id (hex), in any project; traces with none are absent."""
    rows = await db.fetch(
        "SELECT trace_id, count(*) AS spans FROM spans WHERE trace_id = ANY($1::bytea[]) "
        "GROUP BY trace_id",
        [bytes.fromhex(trace_id) for trace_id in trace_ids],
    )
    return {row["trace_id"].hex(): row["spans"] for row in rows}


async def stored_span_ids(
    db: asyncpg.Connection, project: str, trace_ids: Iterable[str]
) -> list[str]:
    """Hex span ids stored for these traces in `project`, one entry per row (duplicates kept)."""
    rows = await db.fetch(
        "SELECT span_id FROM spans WHERE project_id = $1 AND trace_id = ANY($2::bytea[])",
        await project_id(db, project),
        [bytes.fromhex(trace_id) for trace_id in trace_ids],
    )
    return sorted(row["span_id"].hex() for row in rows)


# ---------------------------------------------------------------- TCP proxy


def upstream_of(database_url: str) -> tuple[int, Any]:
    """(address family, address) of the PostgreSQL server a URL points at."""
    url = make_url(database_url)
    socket_dir = url.query.get("host")
    if isinstance(socket_dir, str) and socket_dir.startswith("/"):
        return socket.AF_UNIX, f"{socket_dir}/.s.PGSQL.{url.port or 5432}"
    return socket.AF_INET, (url.host or "127.0.0.1", url.port or 5432)


def via_proxy(database_url: str, port: int) -> str:
    url = make_url(database_url).difference_update_query(["host"])
    return url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; `stop()` refuses and cuts every connection.

    Stopping simulates the database going away under a running collector; `start()` again
    on the same port brings it back. `freeze()` simulates a database that is there but
    silent (a stopped process, a network partition): connections are still accepted, open
    ones stay open, and nothing is forwarded either way until `stop()` and `start()`.
    """

    def __init__(self, database_url: str) -> None:
        self.family, self.upstream = upstream_of(database_url)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._frozen = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        self._frozen.clear()
        self._running.set()
        self._spawn(self._accept_loop, listener)
        return self

    def freeze(self) -> None:
        self._frozen.set()

    def stop(self) -> None:
        self._running.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._running.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._frozen.is_set():
                with self._lock:
                    self._sockets.add(client)  # held open, never answered
                continue
            try:
                server = socket.socket(self.family, socket.SOCK_STREAM)
                server.connect(self.upstream)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets.update((client, server))
            self._spawn(self._pump, client, server)

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        pair = {client: server, server: client}
        try:
            while self._running.is_set():
                if self._frozen.is_set():
                    time.sleep(0.05)
                    continue
                readable, _, _ = select.select(list(pair), [], [], 0.05)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in pair:
                _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    """A body without Content-Length (chunked transfer encoding)."""
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]
