"""Memory per in-flight span: resident memory a collector process holds per span it has
decoded and queued but not yet committed.

Starts `telemetry-collector serve --workers 1` on a scratch database with the in-flight
budget and the writer's queue raised out of the way, locks the `spans` table so no flush
can commit, posts `--requests` batches of `--batch` spans at once, waits until the
process's resident memory stops growing (every request decoded and waiting for the
writer), reads how far it rose (tests/support.py `PeakMemory`), then releases the lock
and checks that every request was answered 200. Two loads (half and all of the requests)
give the growth per span as a slope, free of fixed costs (thread stacks, pools).

    .venv/bin/python bench/ingest_memory.py [--requests 40] [--batch 512]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
from common import ROOT, ScratchDatabase, server_url
from datagen import span_batches
from support import Collector, PeakMemory, _status_bytes

PROTOBUF = "application/x-protobuf"
SETTLE_S = 1.5


async def held_growth(
    database: ScratchDatabase, collector: Collector, bodies: list[bytes]
) -> tuple[int, list[int]]:
    """RSS growth with every body in flight, and the answers' status codes."""
    assert collector.process is not None
    pid = collector.process.pid
    lock = await database.connect()
    transaction = lock.transaction()
    await transaction.start()
    await lock.execute("LOCK TABLE spans IN ACCESS EXCLUSIVE MODE")
    memory = PeakMemory(pid).start()
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=500)) as client:
        posts = [
            asyncio.create_task(
                client.post(
                    f"{collector.url}/v1/traces", content=body, headers={"Content-Type": PROTOBUF}
                )
            )
            for body in bodies
        ]
        previous, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < SETTLE_S:
            await asyncio.sleep(0.25)
            current = _status_bytes(pid, "VmRSS")
            if current != previous:
                previous, stable_since = current, time.monotonic()
        growth = memory.growth()
        print(f"held {time.monotonic() - started:.1f} s: ", end="")
        done_early = sum(post.done() for post in posts)
        await transaction.rollback()
        await lock.close()
        answers = await asyncio.gather(*posts)
    if done_early:
        raise RuntimeError(f"{done_early} requests were answered while the table was locked")
    return growth, [answer.status_code for answer in answers]


async def run(args: argparse.Namespace) -> None:
    bodies = [
        request.SerializeToString()
        # One more than measured: the first one warms the process up.
        for request in span_batches((args.requests + 1) * args.batch, args.batch, 5)
    ]
    wire = sum(map(len, bodies)) / ((args.requests + 1) * args.batch)
    env = {
        "TELEMETRY_AUTH_ENABLED": "false",
        "TELEMETRY_WORKERS_ENABLED": "false",
        "TELEMETRY_MAX_INFLIGHT_BYTES": str(4 << 30),
        "TELEMETRY_WRITER_MAX_QUEUED_ROWS": str(10_000_000),
    }
    async with ScratchDatabase(server_url(args.database_url)) as database:
        log_dir = ROOT / ".data" / "bench-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        results = []
        for count in (args.requests // 2, args.requests):
            # A fresh process for each load, so the first does not leave freed memory behind.
            collector = Collector(database.url, env=env, workers=1).start(log_dir)
            try:
                # Warm up: pools, codecs and partitions exist before the measured load.
                async with httpx.AsyncClient() as client:
                    await client.post(
                        f"{collector.url}/v1/traces",
                        content=bodies[0],
                        headers={"Content-Type": PROTOBUF},
                    )
                growth, statuses = await held_growth(database, collector, bodies[1 : count + 1])
            finally:
                collector.stop()
            spans = count * args.batch
            others = sorted(status for status in statuses if status != 200)
            answered = f"{len(statuses) - len(others)}/{count} answered 200"
            if others:
                answered += f", others {others}"
            print(f"{spans:7d} spans in flight: RSS +{growth / 2**20:6.1f} MiB ({answered})")
            results.append((spans, growth))
    (small, small_growth), (large, large_growth) = results
    slope = (large_growth - small_growth) / (large - small)
    print(f"protobuf on the wire: {wire:.0f} bytes per span")
    print(
        f"memory per in-flight span: {slope:.0f} bytes (slope), "
        f"{large_growth / large:.0f} bytes (average at {large})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--database-url", default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
