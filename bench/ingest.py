"""Ingest throughput of the collector against raw asyncpg COPY of the same rows, same run.

Starts `telemetry-collector serve --workers 2` on a scratch database, posts the spans as
protobuf batches from concurrent clients, then COPYs the identical rows into a scratch
table of the same database from as many connections. Prints spans/s for both and the
ratio; the ratio is what to compare across machines (see docs/benchmarks.md).

    .venv/bin/python bench/ingest.py [--spans 100000] [--batch 512] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from common import ROOT, ScratchDatabase, post_all, raw_copy, server_url, start_collector
from datagen import span_batches

from app.db.tables import SPAN_COLUMNS
from app.ingest.otlp_common import DecodeLimits
from app.ingest.otlp_traces import decode_traces_protobuf
from app.ingest.rows import span_rows


async def run(args: argparse.Namespace) -> None:
    server = server_url(args.database_url)
    requests = list(span_batches(args.spans, args.batch, seed=11))
    bodies = [request.SerializeToString() for request in requests]
    warmup = [request.SerializeToString() for request in span_batches(2048, args.batch, seed=3)]
    async with ScratchDatabase(server) as database:
        collector = start_collector(database.url, args.workers, ROOT / ".data" / "bench-logs")
        try:
            await post_all(f"{collector.url}/v1/traces", warmup, args.clients, "application/x-protobuf")
            seconds, failures = await post_all(
                f"{collector.url}/v1/traces", bodies, args.clients, "application/x-protobuf"
            )
        finally:
            collector.stop()
        connection = await database.connect()
        stored = await connection.fetchval("SELECT count(*) FROM spans") - 2048
        await connection.close()

        now = time.time_ns()
        limits = DecodeLimits(now - 7 * 86400 * 10**9, now + 86400 * 10**9)
        chunks = [span_rows(1, decode_traces_protobuf(body, limits).items).rows for body in bodies]
        copy_seconds = await raw_copy(database, "spans", SPAN_COLUMNS, chunks, args.clients)

    ingest_rate = args.spans / seconds
    copy_rate = args.spans / copy_seconds
    print(f"spans: {args.spans} in batches of {args.batch}, {args.clients} clients, "
          f"{args.workers} collector workers")
    print(f"collector ingest: {seconds:8.2f} s  {ingest_rate:10.0f} spans/s  "
          f"(stored {stored}, non-200 answers {failures})")
    print(f"raw asyncpg COPY: {copy_seconds:8.2f} s  {copy_rate:10.0f} spans/s")
    print(f"ratio ingest / raw COPY: {ingest_rate / copy_rate:.2f}  (target >= 0.30)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
