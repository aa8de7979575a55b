"""Ingest throughput of the collector against raw asyncpg COPY of the same rows, same run.

Starts `telemetry-collector serve --workers 2` on a scratch database and, per signal,
posts protobuf batches from concurrent clients (`--protocol grpc`: the same batches as
OTLP/gRPC Export calls on the gRPC port), then COPYs the identical rows into a
scratch table of the same database (same indexes) from as many connections. Prints
items/s for both and their ratio; the ratio is what to compare across machines, since
both sides run on the same noisy machine in the same minute (docs/benchmarks.md).

    .venv/bin/python bench/ingest.py [--spans 100000] [--logs 100000] [--points 100000]
        [--protocol http|grpc]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from common import (
    ROOT,
    Collector,
    ScratchDatabase,
    export_all,
    post_all,
    raw_copy,
    server_url,
    start_collector,
)
from datagen import log_batches, metric_batches, span_batches

from app.db.tables import LOG_COLUMNS, METRIC_POINT_COLUMNS, SPAN_COLUMNS
from app.ingest.log_rows import log_rows
from app.ingest.otlp_common import DecodeLimits
from app.ingest.otlp_logs import decode_logs_protobuf
from app.ingest.otlp_traces import decode_traces_protobuf
from app.ingest.rows import span_rows

DAY_NS = 86400 * 10**9
PROTOBUF = "application/x-protobuf"


@dataclass
class Signal:
    name: str
    path: str
    grpc_method: str
    table: str
    columns: tuple[str, ...]
    batches: Callable[[int, int, int], Iterable[Any]]
    rows: Callable[[bytes, DecodeLimits], list[tuple]]


def _span_rows(body: bytes, limits: DecodeLimits) -> list[tuple]:
    return span_rows(1, decode_traces_protobuf(body, limits).items).rows


def _log_rows(body: bytes, limits: DecodeLimits) -> list[tuple]:
    return log_rows(1, decode_logs_protobuf(body, limits).items).rows


def _point_rows(body: bytes, limits: DecodeLimits) -> list[tuple]:
    from app.domain.metrics import series_id_of
    from app.ingest.metric_rows import metric_point_rows
    from app.ingest.otlp_metrics import decode_metrics_protobuf

    points = decode_metrics_protobuf(body, limits).items
    for point in points:
        # The collector registers series first; the baseline only needs their ids.
        point.series_id = series_id_of(point.stream, point.attributes)
    return metric_point_rows(1, points).rows


SIGNALS = {
    "spans": Signal(
        "spans",
        "/v1/traces",
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        "spans",
        SPAN_COLUMNS,
        span_batches,
        _span_rows,
    ),
    "logs": Signal(
        "logs",
        "/v1/logs",
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        "logs",
        LOG_COLUMNS,
        log_batches,
        _log_rows,
    ),
    "points": Signal(
        "points",
        "/v1/metrics",
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        "metric_points",
        METRIC_POINT_COLUMNS,
        metric_batches,
        _point_rows,
    ),
}


async def send_all(
    collector: Collector, signal: Signal, bodies: list[bytes], args: argparse.Namespace
) -> tuple[float, int]:
    if args.protocol == "grpc":
        return await export_all(collector.grpc_target, signal.grpc_method, bodies, args.clients)
    return await post_all(f"{collector.url}{signal.path}", bodies, args.clients, PROTOBUF)


async def measure(
    database: ScratchDatabase,
    collector: Collector,
    signal: Signal,
    total: int,
    args: argparse.Namespace,
) -> tuple[float, float, int, int]:
    bodies = [request.SerializeToString() for request in signal.batches(total, args.batch, 11)]
    warmup = [request.SerializeToString() for request in signal.batches(1024, args.batch, 3)]
    await send_all(collector, signal, warmup, args)
    connection = await database.connect()
    # The table name comes from SIGNALS above, never from input.
    count_rows = f'SELECT count(*) FROM "{signal.table}"'  # noqa: S608
    before = await connection.fetchval(count_rows)
    seconds, failures = await send_all(collector, signal, bodies, args)
    stored = await connection.fetchval(count_rows) - before
    await connection.close()
    now = time.time_ns()
    limits = DecodeLimits(now - 7 * DAY_NS, now + DAY_NS)
    chunks = [signal.rows(body, limits) for body in bodies]
    copied = sum(len(chunk) for chunk in chunks)
    copy_seconds = await raw_copy(database, signal.table, signal.columns, chunks, args.clients)
    return copied / seconds, copied / copy_seconds, stored, failures


async def run(args: argparse.Namespace) -> None:
    server = server_url(args.database_url)
    totals = {"spans": args.spans, "logs": args.logs, "points": args.points}
    async with ScratchDatabase(server) as database:
        collector = start_collector(database.url, args.workers, ROOT / ".data" / "bench-logs")
        try:
            results = {}
            for name, total in totals.items():
                if total:
                    results[name] = await measure(database, collector, SIGNALS[name], total, args)
        finally:
            collector.stop()
    print(
        f"OTLP/{args.protocol}, batches of {args.batch}, {args.clients} clients, "
        f"{args.workers} collector workers"
    )
    for name, (ingest_rate, copy_rate, stored, failures) in results.items():
        print(
            f"{name:>6}: collector {ingest_rate:9.0f}/s   raw COPY {copy_rate:9.0f}/s   "
            f"ratio {ingest_rate / copy_rate:.2f}   (stored {stored}, refused {failures})"
        )
    print("target: ratio >= 0.30")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
