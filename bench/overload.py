"""Overload: what the collector accepts, how fast it answers, how much memory it holds and
whether /healthz keeps answering, at its saturation point, at three times the senders, and
with very large batches; then that every acknowledged span is in the database.

Starts `telemetry-collector serve --workers 2` (auth off) on a scratch database and runs
phases of OTLP/HTTP senders (see bench/loadgen.py), each for `--seconds`:

- `--rounds` times: `--clients` senders of `--batch`-span batches (the saturation point:
  more senders add no throughput), then three times as many senders of the same batches.
  Alternating the two evens out a shared machine's changing load; the summary gives the
  median ratio of their throughputs, and of the spans accepted per CPU-second the
  collector got, which does not depend on how much CPU other work left it;
- once: `--large-clients` senders of `--large-batch`-span batches (25,000 spans: 6.6 MB).

    .venv/bin/python bench/overload.py [--clients 48] [--batch 2000] [--seconds 15]
        [--rounds 3] [--aggressive] [--timeout 10] [--set TELEMETRY_MAX_INFLIGHT_BYTES=...]

`--aggressive` senders ignore Retry-After and send again at once; `--timeout` is the
senders' export timeout (the SDKs' default is 10 s).

`--base DIR` compares with the code of another checkout (say `git worktree add DIR main`):
a second collector runs that code, with this interpreter, on its own scratch database, and
every phase is run against both collectors in turn (in alternating order from round to
round), so that both meet the same machine load; the summary is given for each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from common import ROOT, ScratchDatabase, server_url
from loadgen import (
    Bodies,
    HealthProbe,
    Ledger,
    LoopThreads,
    RssSampler,
    cpu_seconds,
    latency_summary,
    lost_spans,
    process_tree,
    rss_bytes,
    run_senders,
)
from support import Collector


@dataclass
class Phase:
    accepted_per_s: float
    per_cpu_s: float  # spans accepted per CPU-second the collector used
    ledger: Ledger


def phase(
    collector: Collector, name: str, bodies: Bodies, clients: int, args: argparse.Namespace
) -> Phase:
    assert collector.process is not None
    processes = process_tree(collector.process.pid)
    load = os.getloadavg()
    collector_cpu, own_cpu = cpu_seconds(processes), cpu_seconds([os.getpid()])
    workers = [pid for pid in processes if pid != collector.process.pid]
    loops, started = LoopThreads.read(workers), time.monotonic()
    with HealthProbe(collector.port) as probe, RssSampler(collector.process.pid) as rss:
        run = run_senders(
            collector.url, bodies, clients, args.seconds, args.aggressive, args.timeout
        )
    collector_cpu = cpu_seconds(processes) - collector_cpu
    loops, elapsed = LoopThreads.read(workers).since(loops), time.monotonic() - started
    own_cpu = cpu_seconds([os.getpid()]) - own_cpu
    answers = sorted(run.window.statuses.items())
    statuses = ", ".join(f"{count} × {status}" for status, count in answers)
    print(f"{name}: {clients} senders × {bodies.spans}-span batches, {args.seconds:g} s")
    print(f"  accepted {run.accepted_per_s:,.0f} spans/s; answers: {statuses}")
    print(f"  batches the senders gave up on: {run.window.abandoned}")
    print(f"  {latency_summary(run.window.accepted_latencies)}")
    print(f"  {probe.summary()}")
    print(f"  {loops.summary(elapsed)} (over {elapsed:.0f} s, until the senders' last answer)")
    print(f"  peak RSS of the collector's processes: {rss.peak / 2**20:,.0f} MiB")
    print(
        f"  CPU seconds used until the senders stopped: collector {collector_cpu:.1f}, "
        f"load generator {own_cpu:.1f}; load average before {load[0]:.1f}"
    )
    per_cpu = run.window.acked_spans / collector_cpu if collector_cpu else 0.0
    return Phase(run.accepted_per_s, per_cpu, run.final)


async def run(args: argparse.Namespace) -> None:
    small = Bodies(args.batch)
    large = Bodies(args.large_batch, templates=2)
    env = {"TELEMETRY_AUTH_ENABLED": "false", **dict(item.split("=", 1) for item in args.set)}
    roots = {"this": ROOT, **({"base": Path(args.base)} if args.base else {})}
    phases: dict[str, list[tuple[Phase, Phase]]] = {label: [] for label in roots}
    ledgers: dict[str, list[Ledger]] = {label: [] for label in roots}
    collectors: dict[str, Collector] = {}
    async with AsyncExitStack() as stack:
        databases = {
            label: await stack.enter_async_context(ScratchDatabase(server_url(args.database_url)))
            for label in roots
        }
        log_dir = ROOT / ".data" / "bench-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for label, root in roots.items():
                collectors[label] = Collector(
                    databases[label].url, env=env, workers=args.workers, root=root
                ).start(log_dir)
                print(f"collector '{label}' up ({args.workers} workers) from {root}")
            idle = {
                label: rss_bytes(collector.process.pid)
                for label, collector in collectors.items()
                if collector.process is not None
            }
            honour = "ignore" if args.aggressive else "honour"
            print(f"settings {env}; senders {honour} Retry-After")
            for number in range(1, args.rounds + 1):
                order = list(roots) if number % 2 else list(reversed(roots))
                for label in order:
                    pair = []
                    for name, clients in (("saturation", args.clients), ("3x", 3 * args.clients)):
                        title = f"round {number}, {name}" + (f" [{label}]" if args.base else "")
                        result = await asyncio.to_thread(
                            phase, collectors[label], title, small, clients, args
                        )
                        pair.append(result)
                        ledgers[label].append(result.ledger)
                        await asyncio.sleep(5)  # let the writer drain between phases
                    phases[label].append((pair[0], pair[1]))
            if args.large_clients:
                for label in roots:
                    title = "large batches" + (f" [{label}]" if args.base else "")
                    result = await asyncio.to_thread(
                        phase, collectors[label], title, large, args.large_clients, args
                    )
                    ledgers[label].append(result.ledger)
                    await asyncio.sleep(5)
        finally:
            for collector in collectors.values():
                collector.stop()
        lost = {}
        for label, database in databases.items():
            connection = await database.connect()
            lost[label] = sum([await lost_spans(connection, ledger) for ledger in ledgers[label]])
            await connection.close()
    for label in roots:
        prefix = f"[{label}] " if args.base else ""
        print(f"{prefix}idle RSS of the parent process: {idle[label] / 2**20:,.0f} MiB")
        if phases[label]:
            pairs = phases[label]
            ratios = [three.accepted_per_s / max(one.accepted_per_s, 1) for one, three in pairs]
            efficiency = [three.per_cpu_s / max(one.per_cpu_s, 1) for one, three in pairs]
            print(
                f"{prefix}3x / saturation, accepted spans/s: {_listed(ratios)}, median "
                f"{statistics.median(ratios):.2f} (target >= 0.80)"
            )
            print(
                f"{prefix}3x / saturation, spans per collector CPU-second: "
                f"{_listed(efficiency)}, median {statistics.median(efficiency):.2f}"
            )
        acked = sum(ledger.acked_spans for ledger in ledgers[label])
        print(f"{prefix}acknowledged spans {acked:,}, of which not stored: {lost[label]}")


def _listed(values: list[float]) -> str:
    return " / ".join(f"{value:.2f}" for value in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=48)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--large-clients", type=int, default=100)
    parser.add_argument("--large-batch", type=int, default=25_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=10.0, help="senders' export timeout")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--aggressive", action="store_true")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for the collector")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--base", default=None, help="another checkout to compare with")
    args = parser.parse_args()
    if args.base:
        args.base = str(Path(args.base).resolve())
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
