"""Two versions of the collector on one seeded database, queried in turn over HTTP.

Seeds `--spans` spans (bench/query.py's data: 5 services over the last 24 hours) through
a collector of this tree that also runs the background jobs (compaction, partition
maintenance), as in production. Two more collectors, without background jobs, serve the
queries: one of this tree and one from `--base` (a worktree of the version to compare
with, at the same schema), on the same database. Each query is timed on both,
alternating call by call so that both meet the same machine load and the same state of
the database:

1. fresh: right after the last span was acknowledged (nothing is waited for);
2. settled: once rollup compaction caught up and at least --settle-s passed.

With `--existing-database URL` nothing is seeded: the queries run once on that database
as it is (a database kept by an earlier run).

`--extra-roots` adds that many single-span traces (service `edge`, a health check) over
the same 24 hours: at a million spans the window then holds about as many roots as the
ten-million-span run's (510,000) while the planner's spans, and so the matches of each
search, stay those of a million: the shape where trace search's cost grew with the
window instead of the matches.

It prints, per query, the median and p95 of each side (client-side ms) and their ratio
(this tree over base), and checks that both answered the same.

    .venv/bin/python bench/before_after.py --base /work/wt/q10-base [--spans 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from common import ROOT, ScratchDatabase, post_all, seed_spans, server_url
from query import settle, uncompacted
from support import Collector

DAY_S = 86400
QUERIES: dict[str, tuple[str, dict[str, Any]]] = {
    "overview 24h": ("/api/v1/dashboard/overview", {"window": "24h"}),
    "overview 24h, service=planner": (
        "/api/v1/dashboard/overview",
        {"window": "24h", "service": "planner"},
    ),
    "search planner >= 1996 ms (1%), 24h": (
        "/api/v1/traces",
        {"service": "planner", "min_duration_ms": 1996, "start": "now-24h", "limit": 20},
    ),
    "search planner >= 1950 ms (~6,200 traces), 24h": (
        "/api/v1/traces",
        {"service": "planner", "min_duration_ms": 1950, "start": "now-24h", "limit": 20},
    ),
    "search planner >= 1920 ms (~9,500 traces), 24h": (
        "/api/v1/traces",
        {"service": "planner", "min_duration_ms": 1920, "start": "now-24h", "limit": 20},
    ),
    "search planner status=error, 24h": (
        "/api/v1/traces",
        {"service": "planner", "status": "error", "start": "now-24h", "limit": 20},
    ),
    "search planner (service only), 24h": (
        "/api/v1/traces",
        {"service": "planner", "start": "now-24h", "limit": 20},
    ),
}


def root_batches(count: int, batch_size: int = 2000) -> list[bytes]:
    """OTLP requests of `count` single-span traces over the last 24 hours."""
    from datagen import _request, _span

    rng = random.Random(11)
    end_ns = time.time_ns()
    bodies, pending = [], []
    for _ in range(count):
        start_ns = end_ns - int(rng.random() * DAY_S * 1e9) - 5 * 10**9
        span = _span(rng, rng.randbytes(16), None, "GET /healthz", 2, start_ns, 10**6, {}, False)
        pending.append(("edge", span))
        if len(pending) == batch_size:
            bodies.append(_request(pending).SerializeToString())
            pending = []
    if pending:
        bodies.append(_request(pending).SerializeToString())
    return bodies


def _same(path: str, left: dict[str, Any], right: dict[str, Any]) -> bool:
    if path.endswith("/traces"):
        return [t["trace_id"] for t in left["traces"]] == [t["trace_id"] for t in right["traces"]]
    return left["errors"] == right["errors"] and left["requests"] == right["requests"]


def _differ(left: dict[str, Any], right: dict[str, Any]) -> str:
    keys = ("traces",) if "traces" in left else ("errors", "requests", "window")
    return "; ".join(f"{key} {left.get(key)} vs {right.get(key)}" for key in keys)


def measure(urls: dict[str, str], repeat: int) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {}
    clients = {side: httpx.Client(base_url=url, timeout=120) for side, url in urls.items()}
    try:
        for name, (path, params) in QUERIES.items():
            samples: dict[str, list[float]] = {side: [] for side in urls}
            for turn in range(repeat):
                answers = {}
                # Alternate which side goes first, so neither always meets a warmer cache.
                order = list(urls) if turn % 2 == 0 else list(reversed(urls))
                for side in order:
                    started = time.perf_counter()
                    response = clients[side].get(path, params=params)
                    samples[side].append((time.perf_counter() - started) * 1000)
                    response.raise_for_status()
                    answers[side] = response.json()
                base, this = answers["base"], answers["this"]
                if not _same(path, base, this):
                    # The window moves with `now` between the two calls: an event at its
                    # start may leave it (the counts were compared exactly in tests).
                    print(f"  {name}: answers differ: {_differ(base, this)}")
            results[name] = samples
    finally:
        for client in clients.values():
            client.close()
    return results


def report(title: str, results: dict[str, dict[str, list[float]]]) -> None:
    print(f"\n{title}")
    print(f"{'query':48} {'base med/p95':>16} {'this med/p95':>16} {'ratio':>6}")
    for name, samples in results.items():
        cells = []
        for side in ("base", "this"):
            ordered = sorted(samples[side])
            p95 = ordered[round(0.95 * (len(ordered) - 1))]
            cells.append(f"{statistics.median(ordered):7.1f}/{p95:7.1f}")
        ratio = statistics.median(samples["this"]) / statistics.median(samples["base"])
        print(f"{name:48} {cells[0]:>16} {cells[1]:>16} {ratio:6.2f}")


def start(database_url: str, root: Path, workers_enabled: bool) -> Collector:
    """A collector run from `root` (its own `app` package), with this tree's Python."""
    log_dir = ROOT / ".data" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {"TELEMETRY_AUTH_ENABLED": "false"}
    if not workers_enabled:
        env["TELEMETRY_WORKERS_ENABLED"] = "false"
    support = sys.modules[Collector.__module__]  # Collector.start runs from support.ROOT
    saved, support.ROOT = support.ROOT, root
    try:
        return Collector(database_url, env=env, workers=2).start(log_dir)
    finally:
        support.ROOT = saved


async def run(args: argparse.Namespace) -> None:
    if args.existing_database:
        this = start(args.existing_database, ROOT, workers_enabled=False)
        try:
            base = start(args.existing_database, Path(args.base), workers_enabled=False)
            try:
                urls = {"base": base.url, "this": this.url}
                report("as it is", measure(urls, args.repeat))
            finally:
                base.stop()
        finally:
            this.stop()
        return
    async with ScratchDatabase(server_url(args.database_url), keep=args.keep_database) as db:
        jobs = start(db.url, ROOT, workers_enabled=True)
        started: list[Collector] = []
        try:
            seconds = await seed_spans(jobs.url, args.spans, args.clients, DAY_S)
            if args.extra_roots:
                begun = time.perf_counter()
                bodies = root_batches(args.extra_roots)
                _, failures = await post_all(
                    f"{jobs.url}/v1/traces", bodies, args.clients, "application/x-protobuf"
                )
                assert failures == 0, f"{failures} batches of roots failed"
                seconds += time.perf_counter() - begun
            seeded_at = time.monotonic()
            print(f"seeded {args.spans} spans and {args.extra_roots} roots in {seconds:.0f} s")
            for root in (Path(args.base), ROOT):
                started.append(start(db.url, root, workers_enabled=False))
            connection = await db.connect()
            print(f"uncompacted settled rollup rows: {await uncompacted(connection)}")
            urls = {"base": started[0].url, "this": started[1].url}
            report("fresh: right after seeding", measure(urls, args.repeat))
            await settle(connection, seeded_at + args.settle_s)
            await connection.close()
            print(f"\nsettled {time.monotonic() - seeded_at:.0f} s after seeding")
            report("settled: after the background jobs caught up", measure(urls, args.repeat))
        finally:
            for collector in started:
                collector.stop()
            jobs.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="worktree of the version to compare with")
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--extra-roots", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--settle-s", type=float, default=90)
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--existing-database", default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
