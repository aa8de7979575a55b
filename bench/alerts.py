"""One alert evaluation round of 1,000 rules over a million stored spans.

Seeds 1,000,000 spans and 200,000 logs over 24 hours through a `serve --workers 2`
collector (as bench/query.py does) plus error events, stops the collector, compacts the
rollups, creates 1,000 rules of the kinds people write (spans: error rate per model, p95
of LLM calls, token spend, tool failures; logs: errors per service, full-text matches,
silent services; errors: spikes, new groups), then times `evaluate_round` several times
(each round a whole interval after the last, so every rule is due). Target: well inside
the default 30 s interval, under 5 s on the 2-core machine.

Signals whose sample reader is not importable in this checkout are left out and said so.

    .venv/bin/python bench/alerts.py [--spans 1000000] [--logs 200000] [--rules 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import httpx
from common import ROOT, ScratchDatabase, server_url, start_collector
from query import seed

from app.config import Settings
from app.db.engine import create_engine
from app.store.alert_rules import create_rule
from app.workers.alert_eval import evaluate_round
from app.workers.rollups import compact_rollups

SERVICES = ["planner", "retriever", "tools", "chat-api", "summarizer"]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "gemini-2.0-flash"]


def span_rules(rng: random.Random) -> list[dict]:
    service = rng.choice(SERVICES)
    model = rng.choice(MODELS)
    window = rng.choice(["5m", "15m", "1h"])
    return [
        {
            "signal": "spans",
            "query": {
                "aggregation": "error_rate",
                "window": window,
                "filters": {"category": "llm"},
                "group_by": ["model"],
            },
            "condition": {"op": ">", "threshold": 0.05},
        },
        {
            "signal": "spans",
            "query": {
                "aggregation": "p95",
                "window": window,
                "filters": {"category": "llm", "model": model},
            },
            "condition": {"op": ">", "threshold": 4000},
        },
        {
            "signal": "spans",
            "query": {
                "aggregation": "sum",
                "field": "input_tokens",
                "window": "1h",
                "filters": {"service": service},
            },
            "condition": {"op": ">", "threshold": 5_000_000},
        },
        {
            "signal": "spans",
            "query": {
                "aggregation": "error_count",
                "window": window,
                "filters": {"category": "tool"},
                "group_by": ["tool"],
            },
            "condition": {"op": ">", "threshold": 20},
        },
    ]


def log_rules(rng: random.Random) -> list[dict]:
    service = rng.choice(SERVICES)
    return [
        {
            "signal": "logs",
            "query": {
                "aggregation": "count",
                "window": rng.choice(["5m", "15m"]),
                "filters": {"level": "error"},
                "group_by": ["service"],
            },
            "condition": {"op": ">", "threshold": 50},
        },
        {
            "signal": "logs",
            "query": {
                "aggregation": "rate",
                "window": "5m",
                "filters": {"service": service, "q": rng.choice(["timeout", "rate limit"])},
            },
            "condition": {"op": ">", "threshold": 1},
        },
        {
            "signal": "logs",
            "query": {"aggregation": "absent", "window": "10m", "filters": {"service": service}},
        },
    ]


def error_rules(rng: random.Random) -> list[dict]:
    return [
        {
            "signal": "errors",
            "query": {
                "aggregation": "count",
                "window": rng.choice(["5m", "1h"]),
                "group_by": ["fingerprint"],
            },
            "condition": {"op": ">", "threshold": 10},
        },
        {
            "signal": "errors",
            "query": {"aggregation": "new_groups", "window": "10m", "group_by": ["service"]},
            "condition": {"op": ">", "threshold": 0},
        },
    ]


def available_signals() -> list[str]:
    readers = {"spans": "app.query.span_samples", "logs": None, "errors": None}
    found = []
    for signal, module in readers.items():
        if module is None or importlib.util.find_spec(module) is not None:
            found.append(signal)
    return found


async def create_rules(engine, project_id: int, count: int, signals: list[str]) -> dict[str, int]:
    rng = random.Random(7)
    makers = {"spans": span_rules, "logs": log_rules, "errors": error_rules}
    made: dict[str, int] = {}
    for index in itertools.count():
        if sum(made.values()) >= count:
            break
        signal = signals[index % len(signals)]
        body = rng.choice(makers[signal](rng))
        await create_rule(engine, project_id, {"name": f"rule-{index}", "for": "1m", **body})
        made[signal] = made.get(signal, 0) + 1
    return made


async def seed_errors(url: str, count: int) -> None:
    rng = random.Random(5)
    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for offset in range(0, count, 500):
            errors = [
                {
                    "type": rng.choice(["ToolTimeout", "RateLimitError", "ValidationError"]),
                    "message": f"failure {rng.randrange(200)}",
                    "service": rng.choice(SERVICES),
                    "timestamp": (now - timedelta(seconds=rng.uniform(0, 86400))).isoformat(),
                    "fingerprint": [f"group-{rng.randrange(300)}"],
                }
                for _ in range(min(500, count - offset))
            ]
            response = await client.post("/api/v1/ingest/errors", json={"errors": errors})
            response.raise_for_status()


async def run(args: argparse.Namespace) -> None:
    signals = [s for s in available_signals() if not args.signals or s in args.signals]
    missing = sorted({"spans", "logs", "errors"} - set(available_signals()))
    if missing:
        print(f"left out (no sample reader in this checkout): {', '.join(missing)}")
    async with ScratchDatabase(server_url(args.database_url), keep=args.keep_database) as database:
        collector = start_collector(database.url, 2, ROOT / ".data" / "bench-logs")
        try:
            span_s, log_s = await seed(collector.url, args.spans, args.logs, args.clients)
            await seed_errors(collector.url, args.errors)
        finally:
            collector.stop()  # its own alert job must not take the rules during timing
        print(
            f"seeded {args.spans} spans in {span_s:.0f} s, {args.logs} logs in {log_s:.0f} s,"
            f" {args.errors} errors"
        )
        settings = Settings(database_url=database.url)
        engine = create_engine(settings, database.url)
        await compact_rollups(engine, max_minutes=1_000_000)
        connection = await database.connect()
        await connection.execute("VACUUM ANALYZE")
        project_id = await connection.fetchval("SELECT id FROM projects WHERE name = 'default'")
        await connection.close()
        made = await create_rules(engine, project_id, args.rules, signals)
        print(f"rules: {made} (+ the built-in rules)")
        interval = settings.seconds("alert_eval_interval")
        now = datetime.now(UTC)
        durations = []
        for round_number in range(args.rounds):
            started = time.perf_counter()
            report = await evaluate_round(
                engine, settings, now + timedelta(seconds=interval * round_number)
            )
            durations.append(time.perf_counter() - started)
            print(
                f"round {round_number + 1}: {report.evaluated} rules in {durations[-1]:.2f} s,"
                f" {report.failed} failed, {report.alerts_written} alert rows written,"
                f" events {report.events}"
            )
            if report.errors:
                print(f"  e.g. {next(iter(report.errors.values()))}")
        await engine.dispose()
    verdict = "ok" if statistics.median(durations) < 5 else "OVER"
    print(f"median round: {statistics.median(durations):.2f} s (target < 5 s): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--logs", type=int, default=200_000)
    parser.add_argument("--errors", type=int, default=20_000)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--signals", nargs="*", help="only these signals (spans, logs, errors)")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--database-url", default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
