"""Load for the overload and reliability benchmarks: OTLP senders, probes, and the ledger.

- `Bodies` hands out pre-encoded span batches, each with trace ids of its own, so every
  request is new data and what was acknowledged can be found again in the database.
- `Sender` is a thread posting batches the way an OpenTelemetry SDK does: through the
  SDK's own OTLP/HTTP client (opentelemetry-exporter-otlp-proto-http: a requests session,
  retries on 429/502/503/504 honouring Retry-After, giving up after its 10 s timeout), fed
  encoded bytes so that the load generator's CPU goes to sending rather than encoding.
  With `aggressive`, it ignores Retry-After and sends again at once, as a misbehaving
  sender or a crowd of them would.
- `HealthProbe` times GET /healthz on a new connection every 100 ms, from a process of
  its own so that the senders' threads do not delay it.
- `RssSampler` follows the collector's processes' resident memory.
- `Ledger` records every answer, and `lost_spans` counts acknowledged spans that are not
  in the database.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from datagen import span_batches
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)


class Bodies:
    """Encoded ExportTraceServiceRequests of `spans` spans; every body has fresh trace ids."""

    def __init__(self, spans: int, templates: int = 4) -> None:
        self.spans = spans
        # Per template: the encoded body, and where each trace id stands in it.
        self._templates: list[tuple[bytes, list[tuple[int, int]], int]] = []
        for request in span_batches(spans * templates, spans, seed=spans):
            body = request.SerializeToString()
            traces = {
                span.trace_id
                for resource in request.resource_spans
                for scope in resource.scope_spans
                for span in scope.spans
            }
            places = []
            for number, trace in enumerate(traces):
                at = body.find(trace)
                while at != -1:
                    places.append((at, number))
                    at = body.find(trace, at + len(trace))
            self._templates.append((body, sorted(places), len(traces)))
        self._lock = threading.Lock()
        self._next = 0

    def take(self) -> tuple[bytes, list[bytes]]:
        """(body, its trace ids): a template with every trace id replaced by a new one."""
        with self._lock:
            body, places, count = self._templates[self._next % len(self._templates)]
            self._next += 1
        fresh = [random.randbytes(16) for _ in range(count)]
        pieces, last = [], 0
        for at, number in places:
            pieces += (body[last:at], fresh[number])
            last = at + 16
        pieces.append(body[last:])
        return b"".join(pieces), fresh


@dataclass
class Ledger:
    """What every attempt was answered, and the traces of the acknowledged batches."""

    statuses: dict[str, int] = field(default_factory=dict)
    accepted_latencies: list[float] = field(default_factory=list)
    acked_traces: list[bytes] = field(default_factory=list)
    acked_spans: int = 0
    abandoned: int = 0  # batches the sender gave up on (the SDK drops them)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, status: str, latency_s: float) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == "200":
                self.accepted_latencies.append(latency_s)

    def acked(self, traces: list[bytes], spans: int) -> None:
        with self.lock:
            self.acked_traces.extend(traces)
            self.acked_spans += spans


class _CountingTransport:
    """Wraps the SDK client's transport to see every attempt, not only the outcome."""

    def __init__(self, inner: Any, ledger: Ledger) -> None:
        self._inner = inner
        self._ledger = ledger

    def request(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = self._inner.request(*args, **kwargs)
        status = str(result.status_code) if result.status_code else "error"
        self._ledger.answer(status, time.perf_counter() - started)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Sender(threading.Thread):
    def __init__(
        self,
        url: str,
        bodies: Bodies,
        ledger: Ledger,
        stop: threading.Event,
        aggressive: bool,
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__(daemon=True)
        self.bodies, self.ledger, self.stop, self.aggressive = bodies, ledger, stop, aggressive
        self.timeout_s = timeout_s
        self.exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=timeout_s)
        client = self.exporter._client  # the SDK's HTTP client: retries, Retry-After, deadline
        client._transport = _CountingTransport(client._transport, ledger)
        self.client = client

    def run(self) -> None:
        while not self.stop.is_set():
            body, traces = self.bodies.take()
            if self.aggressive:
                ok = self._until_accepted(body)
            else:
                ok = self.client.export(body).success
            if ok:
                self.ledger.acked(traces, self.bodies.spans)
            elif not self.stop.is_set():
                with self.ledger.lock:
                    self.ledger.abandoned += 1

    def _until_accepted(self, body: bytes) -> bool:
        while not self.stop.is_set():
            result = self.client._submit(body, self.timeout_s)
            if result.status_code == 200:
                return True
            if result.status_code not in (429, 503):
                time.sleep(0.1)  # a connection error: do not spin on a closed port
        return False


@dataclass
class Run:
    """A load phase: the ledger when the phase ended (throughput) and at the very end."""

    seconds: float
    window: Ledger
    final: Ledger

    @property
    def accepted_per_s(self) -> float:
        return self.window.acked_spans / self.seconds


def run_senders(
    url: str,
    bodies: Bodies,
    clients: int,
    seconds: float,
    aggressive: bool,
    timeout_s: float = 10.0,
) -> Run:
    ledger = Ledger()
    stop = threading.Event()
    senders = [Sender(url, bodies, ledger, stop, aggressive, timeout_s) for _ in range(clients)]
    for sender in senders:
        sender.start()
    time.sleep(seconds)
    # What is acknowledged after this instant counts as stored, not as throughput.
    stop.set()
    with ledger.lock:
        window = Ledger(
            dict(ledger.statuses),
            list(ledger.accepted_latencies),
            list(ledger.acked_traces),
            ledger.acked_spans,
            ledger.abandoned,
        )
    for sender in senders:
        sender.join(30)
    return Run(seconds, window, ledger)


def _probe_loop(port: int, interval_s: float, stop: Any, results: Any) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
            ok = answer.startswith(b"HTTP/1.1 200 ")
        except OSError:
            ok = False
        results.put((time.perf_counter() - started, ok))
        time.sleep(interval_s)


class HealthProbe:
    def __init__(self, port: int, interval_s: float = 0.1) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._results = context.Queue()
        self._process = context.Process(
            target=_probe_loop, args=(port, interval_s, self._stop, self._results), daemon=True
        )

    def __enter__(self) -> HealthProbe:
        self._process.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._process.join(15)
        self.samples: list[tuple[float, bool]] = []
        while not self._results.empty():
            self.samples.append(self._results.get())

    def summary(self) -> str:
        latencies = sorted(latency for latency, ok in self.samples if ok)
        failed = sum(1 for _, ok in self.samples if not ok)
        if not latencies:
            return f"/healthz: no answer ({failed} failed)"
        return (
            f"/healthz: {len(latencies)} probes, p50 {_ms(statistics.median(latencies))}, "
            f"p99 {_ms(_quantile(latencies, 0.99))}, max {_ms(latencies[-1])}, "
            f"{failed} failed"
        )


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class LoopThreads:
    """What the kernel says about the event-loop threads of the collector's workers (Linux).

    A worker's event loop runs on its main thread, whose thread id is the process id, so
    this is read from outside, without touching the collector: time on a CPU, time
    runnable but waiting for one (the machine's share), and how often the thread went to
    sleep (`voluntary`: epoll waits and, when a thread of the process holds the GIL,
    each wait to take it back) or was preempted (`involuntary`).
    """

    on_cpu_s: float = 0.0
    runqueue_s: float = 0.0
    voluntary: int = 0
    involuntary: int = 0

    @classmethod
    def read(cls, pids: list[int]) -> LoopThreads:
        total = cls()
        for pid in pids:
            try:
                with open(f"/proc/{pid}/schedstat") as stat:
                    on_cpu, waiting, _ = stat.read().split()
                with open(f"/proc/{pid}/status") as status:
                    switches = {
                        key: int(value)
                        for key, value in (line.split(":", 1) for line in status)
                        if key.endswith("ctxt_switches")
                    }
            except (OSError, ValueError):
                continue
            total.on_cpu_s += int(on_cpu) / 1e9
            total.runqueue_s += int(waiting) / 1e9
            total.voluntary += switches.get("voluntary_ctxt_switches", 0)
            total.involuntary += switches.get("nonvoluntary_ctxt_switches", 0)
        return total

    def since(self, earlier: LoopThreads) -> LoopThreads:
        return LoopThreads(
            self.on_cpu_s - earlier.on_cpu_s,
            self.runqueue_s - earlier.runqueue_s,
            self.voluntary - earlier.voluntary,
            self.involuntary - earlier.involuntary,
        )

    def summary(self, seconds: float) -> str:
        return (
            f"event-loop threads (sum over workers): on a CPU {self.on_cpu_s:.1f} s, "
            f"runnable but waiting for a CPU {self.runqueue_s:.1f} s, sleeps "
            f"{self.voluntary / seconds:,.0f}/s, preemptions {self.involuntary / seconds:,.0f}/s"
        )


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Peak of the summed resident memory of a process and its children."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._stop_event = pid, 0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.1):
            self.peak = max(self.peak, sum(rss_bytes(pid) for pid in process_tree(self.pid)))

    def __enter__(self) -> RssSampler:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop_event.set()
        self.join()


async def lost_spans(connection: asyncpg.Connection, ledger: Ledger) -> int:
    """Acknowledged spans not found in the database (each batch's traces are its own)."""
    stored = 0
    for chunk in _chunks(ledger.acked_traces, 20_000):
        stored += await connection.fetchval(
            "SELECT count(*) FROM spans WHERE trace_id = ANY($1::bytea[])", chunk
        )
    return ledger.acked_spans - stored


def _chunks(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def latency_summary(latencies: list[float]) -> str:
    if not latencies:
        return "no accepted request"
    ordered = sorted(latencies)
    return (
        f"accepted request latency p50 {_ms(statistics.median(ordered))}, "
        f"p99 {_ms(_quantile(ordered, 0.99))}, max {_ms(ordered[-1])}"
    )


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"
