"""UI page times at a million spans: seeds as bench/query.py does, then times each page of
the web UI through real HTTP (the HTML as the browser gets it, not the charts' drawing).

Seeds 1,000,000 spans and 200,000 logs over 24 hours through a `serve --workers 2`
collector (auth off, so pages need no sign-in), creates an SLO and times every page at once
(fresh: nothing compacted or analyzed), then compacts the rollups, runs VACUUM ANALYZE, lets
the worker count the SLO and times them again (settled); prints the median and p90 of
repeated loads of each page against the 300 ms target, for both.

    .venv/bin/python bench/ui.py [--spans 1000000] [--logs 200000] [--repeat 15]
    .venv/bin/python bench/ui.py --seeded <url of a database kept by --keep-database>
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time

import httpx
from common import ROOT, ScratchDatabase, server_url, start_collector
from query import seed

from app.config import Settings
from app.db.engine import create_engine
from app.workers.rollups import compact_rollups

TARGET_MS = 300
SLO = {
    "name": "requests succeed",
    "service": "planner",
    "sli": {"type": "availability"},
    "objective": 99,
    "window": "1d",
}


def timed(client: httpx.Client, path: str, repeat: int) -> list[float]:
    client.get(path).raise_for_status()  # once untimed: templates compiled, plans cached
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return samples


def first(pattern: str, html: str) -> str | None:
    found = re.search(pattern, html)
    return found.group(1) if found else None


def measure(url: str, repeat: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        pages = {
            "overview (1h)": "/ui/?window=1h",
            "overview (24h)": "/ui/?window=24h",
            "overview (24h, one service)": "/ui/?window=24h&service=planner",
            "overview LLM section (1h)": "/ui/overview/llm?window=1h",
            "overview LLM section (24h)": "/ui/overview/llm?window=24h",
            "traces (1h)": "/ui/traces?window=1h",
            "traces (service + min duration, 24h)": (
                "/ui/traces?window=24h&service=planner&min_duration_ms=1500"
            ),
            "logs (1h)": "/ui/logs?window=1h",
            "logs full-text (24h)": "/ui/logs?window=24h&q=timeout",
            "errors (24h)": "/ui/errors?window=24h",
            "alerts": "/ui/alerts",
            "slos": "/ui/slos",
        }
        for name, path in pages.items():
            results[name] = timed(client, path, repeat)
        trace_id = first(r"/ui/traces/([0-9a-f]{32})", client.get(pages["traces (1h)"]).text)
        if trace_id:
            results["trace page (waterfall + logs)"] = timed(
                client, f"/ui/traces/{trace_id}", repeat
            )
        group = first(r"/ui/errors/([0-9a-f]{32})", client.get(pages["errors (24h)"]).text)
        if group:
            results["error group page"] = timed(client, f"/ui/errors/{group}", repeat)
        slo_id = first(r"/ui/slos/(\d+)", client.get("/ui/slos").text)
        if slo_id:
            results["SLO page (status + history)"] = timed(client, f"/ui/slos/{slo_id}", repeat)
        # The API's own dashboards in the same run: what the overview page builds on.
        for name in ("overview", "llm"):
            results[f"(API) /api/v1/dashboard/{name} 24h"] = timed(
                client, f"/api/v1/dashboard/{name}?window=24h", repeat
            )
    return results


async def remeasure(args: argparse.Namespace) -> dict[str, list[float]]:
    """Time the pages again on a database an earlier `--keep-database` run seeded."""
    collector = start_collector(args.seeded, 2, ROOT / ".data" / "bench-logs")
    try:
        return await asyncio.to_thread(measure, collector.url, args.repeat)
    finally:
        collector.stop()


def report(results: dict[str, list[float]]) -> None:
    print(f"\n{'page':40} {'median ms':>10} {'p90 ms':>8} {'target':>8}")
    for name, samples in results.items():
        ordered = sorted(samples)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        median = statistics.median(samples)
        verdict = "ok" if median < TARGET_MS else "OVER"
        print(f"{name:40} {median:10.1f} {p90:8.1f} {TARGET_MS:8} {verdict}")


async def run(args: argparse.Namespace) -> None:
    if args.seeded:
        report(await remeasure(args))
        return
    server = server_url(args.database_url)
    async with ScratchDatabase(server, keep=args.keep_database) as database:
        collector = start_collector(database.url, 2, ROOT / ".data" / "bench-logs")
        try:
            span_s, log_s = await seed(collector.url, args.spans, args.logs, args.clients)
            print(f"seeded {args.spans} spans in {span_s:.0f} s, {args.logs} logs in {log_s:.0f} s")
            async with httpx.AsyncClient(timeout=30) as client:
                answer = await client.post(f"{collector.url}/api/v1/slos", json=SLO)
                answer.raise_for_status()
            # As an operator meets them: right after the last batch was acknowledged, before
            # compaction, autovacuum or ANALYZE (the new SLO may not be counted yet).
            fresh = await asyncio.to_thread(measure, collector.url, args.repeat)
            engine = create_engine(Settings(), database.url, pool_size=2)
            await compact_rollups(engine, max_minutes=1_000_000)
            await engine.dispose()
            connection = await database.connect()
            await connection.execute("VACUUM ANALYZE")
            sizes = await connection.fetchrow(
                "SELECT (SELECT count(*) FROM spans) AS spans, (SELECT count(*) FROM logs) AS logs,"
                " (SELECT count(*) FROM error_groups) AS error_groups"
            )
            await connection.close()
            print(f"rows: {dict(sizes)}")
            await asyncio.sleep(args.slo_wait)  # the SLO worker counts the window's minutes
            settled = await asyncio.to_thread(measure, collector.url, args.repeat)
        finally:
            collector.stop()
    print("\nfresh: right after seeding, nothing compacted or analyzed")
    report(fresh)
    print("\nsettled: rollups compacted, VACUUM ANALYZE, the SLO counted")
    report(settled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--logs", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--slo-wait", type=float, default=20.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--keep-database", action="store_true", help="keep the seeded database to profile"
    )
    parser.add_argument(
        "--seeded", default=None, help="URL of a database a --keep-database run seeded: time only"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
