"""Overload: what the collector accepts, how fast it answers, how much memory it holds and
whether /healthz keeps answering, at its saturation point, at three times the senders, and
with very large batches; then that every acknowledged span is in the database.

Starts `telemetry-collector serve --workers 2` (auth off) on a scratch database and runs
three phases of OTLP/HTTP senders (see bench/loadgen.py), each for `--seconds`:

1. `--clients` senders of `--batch`-span batches (the saturation point: more senders add
   no throughput),
2. three times as many senders of the same batches,
3. `--large-clients` senders of `--large-batch`-span batches (25,000 spans: 6.6 MB).

    .venv/bin/python bench/overload.py [--clients 48] [--batch 2000] [--seconds 30]
        [--aggressive] [--set TELEMETRY_MAX_INFLIGHT_BYTES=134217728]

`--aggressive` senders ignore Retry-After and send again at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from common import ROOT, ScratchDatabase, server_url
from loadgen import (
    Bodies,
    HealthProbe,
    Ledger,
    RssSampler,
    cpu_seconds,
    latency_summary,
    lost_spans,
    process_tree,
    rss_bytes,
    run_senders,
)
from support import Collector


def phase(
    collector: Collector, name: str, bodies: Bodies, clients: int, args: argparse.Namespace
) -> tuple[float, Ledger]:
    assert collector.process is not None
    processes = process_tree(collector.process.pid)
    load = os.getloadavg()
    collector_cpu, own_cpu = cpu_seconds(processes), cpu_seconds([os.getpid()])
    with HealthProbe(collector.port) as probe, RssSampler(collector.process.pid) as rss:
        run = run_senders(collector.url, bodies, clients, args.seconds, args.aggressive)
    collector_cpu = cpu_seconds(processes) - collector_cpu
    own_cpu = cpu_seconds([os.getpid()]) - own_cpu
    answers = sorted(run.window.statuses.items())
    statuses = ", ".join(f"{count} × {status}" for status, count in answers)
    print(f"{name}: {clients} senders × {bodies.spans}-span batches, {args.seconds:g} s")
    print(f"  accepted {run.accepted_per_s:,.0f} spans/s; answers: {statuses}")
    print(f"  batches the senders gave up on: {run.window.abandoned}")
    print(f"  {latency_summary(run.window.accepted_latencies)}")
    print(f"  {probe.summary()}")
    print(f"  peak RSS of the collector's processes: {rss.peak / 2**20:,.0f} MiB")
    print(
        f"  CPU seconds used until the senders stopped: collector {collector_cpu:.1f}, "
        f"load generator {own_cpu:.1f}; load average before {load[0]:.1f}"
    )
    return run.accepted_per_s, run.final


async def run(args: argparse.Namespace) -> None:
    small = Bodies(args.batch)
    large = Bodies(args.large_batch, templates=2)
    env = {"TELEMETRY_AUTH_ENABLED": "false", **dict(item.split("=", 1) for item in args.set)}
    async with ScratchDatabase(server_url(args.database_url)) as database:
        log_dir = ROOT / ".data" / "bench-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        collector = Collector(database.url, env=env, workers=args.workers).start(log_dir)
        ledgers: list[Ledger] = []
        try:
            assert collector.process is not None
            idle = rss_bytes(collector.process.pid)
            print(f"collector up ({args.workers} workers), settings {env}")
            print(f"senders {'ignore' if args.aggressive else 'honour'} Retry-After")
            unloaded, ledger = await asyncio.to_thread(
                phase, collector, "saturation", small, args.clients, args
            )
            ledgers.append(ledger)
            await asyncio.sleep(5)  # let the writer drain between phases
            overloaded, ledger = await asyncio.to_thread(
                phase, collector, "3x overload", small, 3 * args.clients, args
            )
            ledgers.append(ledger)
            await asyncio.sleep(5)
            if args.large_clients:
                _, ledger = await asyncio.to_thread(
                    phase, collector, "large batches", large, args.large_clients, args
                )
                ledgers.append(ledger)
        finally:
            collector.stop()
        connection = await database.connect()
        lost = sum([await lost_spans(connection, ledger) for ledger in ledgers])
        acked = sum(ledger.acked_spans for ledger in ledgers)
        await connection.close()
    print(f"idle RSS of the parent process: {idle / 2**20:,.0f} MiB")
    print(f"3x overload / saturation: {overloaded / unloaded:.2f} (target >= 0.80)")
    print(f"acknowledged spans {acked:,}, of which not stored: {lost}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=48)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--large-clients", type=int, default=100)
    parser.add_argument("--large-batch", type=int, default=25_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--aggressive", action="store_true")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for the collector")
    parser.add_argument("--database-url", default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
