"""Reliability: acknowledged-then-lost spans, and how fast ingest notices a database outage
and recovers from it, under steady load.

Starts `telemetry-collector serve --workers 2` (auth off, default settings) whose only
way to PostgreSQL is a TCP proxy (the one the tests use), with `--clients` OpenTelemetry
SDK senders of `--batch`-span batches running throughout, plus a probe that posts a
one-span batch every 100 ms and notes when each answer came. Scenarios, in turn:

- down: the proxy refuses and cuts every connection for `--outage` seconds, then returns;
- frozen: the proxy accepts connections and forwards nothing (a stopped server, a
  partition) for `--outage` seconds, then heals (connections made meanwhile are lost);
- SIGTERM while requests are in flight (the exit status is reported);
- SIGKILL while requests are in flight.

Every span acknowledged in any scenario is then looked up in the database.

    .venv/bin/python bench/reliability.py [--clients 8] [--batch 512] [--outage 10]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from common import ROOT, ScratchDatabase, server_url
from loadgen import Bodies, Ledger, Sender, lost_spans
from otlp_testkit import TcpProxy, via_proxy
from support import Collector


@dataclass(eq=False)
class Probe(threading.Thread):
    """One single-attempt export of a one-span batch every 100 ms: (time, status, seconds)."""

    url: str
    bodies: Bodies
    ledger: Ledger
    answers: list[tuple[float, str, float]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    def run(self) -> None:
        sender = Sender(self.url, self.bodies, Ledger(), self.stop, aggressive=False)
        while not self.stop.is_set():
            body, traces = self.bodies.take()
            started = time.monotonic()
            result = sender.client._submit(body, 30.0)
            status = str(result.status_code) if result.status_code else "error"
            self.answers.append((started, status, time.monotonic() - started))
            if status == "200":
                self.ledger.acked(traces, self.bodies.spans)
            self.stop.wait(0.1)

    def first(self, status: str, after: float) -> float | None:
        """Seconds from `after` to the first answer `status` to a probe sent since."""
        times = [
            sent + took
            for sent, answered, took in self.answers
            if sent >= after and answered == status
        ]
        return min(times) - after if times else None

    def slowest(self, start: float, end: float) -> float:
        """The longest wait of a probe in flight at some moment between `start` and `end`."""
        return max(
            (took for sent, _, took in self.answers if sent < end and sent + took >= start),
            default=0.0,
        )


@dataclass(eq=False)
class ReadProbe(Probe):
    """GET /api/v1/services every 100 ms, each on a new connection, as a dashboard would."""

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                status = str(httpx.get(f"{self.url}/api/v1/services", timeout=60).status_code)
            except httpx.HTTPError:
                status = "error"
            self.answers.append((started, status, time.monotonic() - started))
            self.stop.wait(0.1)


class Load:
    """Senders and a probe against one collector, until `stop()`."""

    def __init__(self, collector: Collector, args: argparse.Namespace, ledger: Ledger) -> None:
        self.stop_event = threading.Event()
        self.senders = [
            Sender(collector.url, args.bodies, ledger, self.stop_event, aggressive=False)
            for _ in range(args.clients)
        ]
        self.probe = Probe(collector.url, args.probe_bodies, ledger)
        self.reads = ReadProbe(collector.url, args.probe_bodies, Ledger())
        for thread in (*self.senders, self.probe, self.reads):
            thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.probe.stop.set()
        self.reads.stop.set()
        for thread in (*self.senders, self.probe, self.reads):
            thread.join(70)


def outage(
    name: str, args: argparse.Namespace, start: Callable[[], Collector], proxy: TcpProxy
) -> None:
    collector = start()
    load = Load(collector, args, args.ledger)
    try:
        time.sleep(5)
        began = time.monotonic()
        if name == "frozen":
            proxy.freeze()
        else:
            proxy.stop()
        time.sleep(args.outage)
        if name == "frozen":
            proxy.stop()
        back = time.monotonic()
        proxy.start()
        time.sleep(10)
    finally:
        load.stop()
        collector.stop()
    refused = load.probe.first("503", began)
    recovered = load.probe.first("200", back)
    slowest = load.probe.slowest(began, back)
    print(f"database {name} for {args.outage:g} s: first 503 answered {_s(refused)} after it")
    print(f"  began, slowest answer to a request in flight during it {slowest:.2f} s, first 200")
    print(f"  answered {_s(recovered)} after it ended")
    print(
        f"  reads: first 503 {_s(load.reads.first('503', began))} after it began, slowest "
        f"{load.reads.slowest(began, back):.2f} s, first 200 {_s(load.reads.first('200', back))}"
        " after it ended"
    )


def stopped(name: str, args: argparse.Namespace, start: Callable[[], Collector]) -> None:
    collector = start()
    load = Load(collector, args, args.ledger)
    try:
        time.sleep(8)
        if name == "SIGKILL":
            collector.kill()
        else:
            collector.stop()
    finally:
        load.stop()
        collector.kill()  # a no-op once it has exited
    assert collector.process is not None
    print(f"{name} under load: exit status {collector.process.returncode}")


def _s(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.2f} s"


async def run(args: argparse.Namespace) -> None:
    args.bodies = Bodies(args.batch)
    args.probe_bodies = Bodies(1)
    args.ledger = Ledger()
    async with ScratchDatabase(server_url(args.database_url)) as database:
        proxy = TcpProxy(database.url).start()
        log_dir = ROOT / ".data" / "bench-logs"
        log_dir.mkdir(parents=True, exist_ok=True)

        def start() -> Collector:
            url = via_proxy(database.url, proxy.port)
            env = {"TELEMETRY_AUTH_ENABLED": "false"}
            return Collector(url, env=env, workers=args.workers).start(log_dir)

        print(f"{args.clients} SDK senders × {args.batch}-span batches, {args.workers} workers")
        for name in ("down", "frozen"):
            await asyncio.to_thread(outage, name, args, start, proxy)
        for name in ("SIGTERM", "SIGKILL"):
            await asyncio.to_thread(stopped, name, args, start)
        proxy.stop()
        connection = await database.connect()
        lost = await lost_spans(connection, args.ledger)
        await connection.close()
    print(f"acknowledged spans {args.ledger.acked_spans:,}, of which not stored: {lost}")
    print(f"batches the senders gave up on (never acknowledged): {args.ledger.abandoned}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--outage", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
