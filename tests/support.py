"""Test helpers: a collector subprocess, a fresh database, free ports, and the spec examples
shifted to now."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from app.db.engine import asyncpg_dsn
from app.db.migrate import upgrade_to_head
from app.workers.runner import Job

ROOT = Path(__file__).resolve().parents[1]
# The OTLP specification's example payloads, copied byte for byte (see SOURCE.md there).
EXAMPLES = ROOT / "tests" / "fixtures" / "otlp_examples"


@contextmanager
def embedded_server(root: Path | None = None) -> Iterator[str]:
    """An embedded PostgreSQL (app/db/embedded.py) in a directory of its own; yields its URL.

    The directory is a fresh one from `tempfile`, not under pytest's shared temporary folder:
    as root, the server runs as another user that must reach the directory, and another
    pytest run resets that folder's permissions, which broke a run at teardown.
    """
    from app.db.embedded import start_embedded, stop_embedded

    owned = root is None
    root = root or Path(tempfile.mkdtemp(prefix="telemetry-test-pg-"))
    try:
        yield start_embedded(root, database="postgres")
    finally:
        stop_embedded(root)
        if owned:
            shutil.rmtree(root, ignore_errors=True)


def _admin(server_url: str, sql: str) -> None:
    async def run() -> None:
        dsn = asyncpg_dsn(make_url(server_url).set(database="postgres").render_as_string(False))
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


def create_test_database(server_url: str) -> str:
    """A new database on the server, migrated to head; returns its URL (needs CREATEDB)."""
    name = f"telemetry_test_{uuid.uuid4().hex[:10]}"
    _admin(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    upgrade_to_head(url)
    return url


def drop_test_database(url: str) -> None:
    name = make_url(url).database
    _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new, migrated database on `server`, dropped afterwards."""
    url = create_test_database(server)
    try:
        yield url
    finally:
        drop_test_database(url)


@dataclass
class Collector:
    """A real `telemetry-collector serve` process on a local port."""

    database_url: str
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    port: int = field(default_factory=free_port)
    # Never the default 4317: collectors of one run (and other runs) must not share it.
    grpc_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # The checkout whose code runs (bench/overload.py --base runs an older one beside this).
    root: Path = ROOT

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_target(self) -> str:
        """The OTLP/gRPC address, as grpc.insecure_channel takes it."""
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, log_dir: Path, timeout_s: float = 60.0) -> Collector:
        env = {
            **os.environ,
            "TELEMETRY_DATABASE_URL": self.database_url,
            "TELEMETRY_LOG_LEVEL": "warning",
            "TELEMETRY_GRPC_PORT": str(self.grpc_port),
            **self.env,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.log_path = log_dir / f"collector-{self.port}.log"
        log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            cwd=self.root,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collector exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"collector did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown hooks, no flushing."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _status_bytes(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise LookupError(f"no {field} in /proc/{pid}/status")


class PeakMemory:
    """How far a process's resident memory rose above its level at `start()` (Linux).

    Writing 5 to /proc/PID/clear_refs resets the peak (VmHWM) to the current resident size,
    so the peak read afterwards belongs to what happened since, not to the process's life.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = 0

    def start(self) -> PeakMemory:
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
        except FileNotFoundError:
            import pytest

            pytest.skip("measuring a process's peak memory needs Linux /proc")
        self.baseline = _status_bytes(self.pid, "VmRSS")
        return self

    def growth(self) -> int:
        return _status_bytes(self.pid, "VmHWM") - self.baseline


def load_example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


_TIME_KEYS = ("startTimeUnixNano", "endTimeUnixNano", "timeUnixNano", "observedTimeUnixNano")


def unix_nano_times(document: Any) -> list[int]:
    """Every (non-zero) *UnixNano timestamp in an OTLP JSON document."""
    found: list[int] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _TIME_KEYS and value not in (None, "", "0", 0):
                    found.append(int(value))
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(document)
    return found


def shift_to_now(document: Any, now_ns: int | None = None) -> Any:
    """Move every *UnixNano timestamp so the earliest is `now_ns`, keeping the gaps."""
    document = copy.deepcopy(document)
    found = unix_nano_times(document)
    if not found:
        return document
    offset = (now_ns or time.time_ns()) - min(found)

    def shift(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _TIME_KEYS and value not in (None, "", "0", 0):
                    node[key] = str(int(value) + offset)
                else:
                    shift(value)
        elif isinstance(node, list):
            for item in node:
                shift(item)

    shift(document)
    return document


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class ConnectionClosed(Exception):
    """The server closed the connection (or reset it)."""


class RawHttp:
    """One HTTP/1.1 connection written by hand, for what a client library will not do: send a
    head without its body, stop mid-body, or see exactly when the server answers or closes."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self._buffer = b""

    @staticmethod
    def head(method: str, path: str, headers: dict[str, str]) -> bytes:
        lines = [
            f"{method} {path} HTTP/1.1",
            "Host: collector",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError) as error:
            raise ConnectionClosed() from error

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> RawResponse:
        head = self.head(method, path, {"Content-Length": str(len(body)), **(headers or {})})
        self.send(head + body)
        return self.response()

    def response(self) -> RawResponse:
        """Read one whole answer (Content-Length framed); raises `ConnectionClosed`."""
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        size = int(headers.get("content-length", "0"))
        while len(self._buffer) < size:
            self._fill()
        body, self._buffer = self._buffer[:size], self._buffer[size:]
        return RawResponse(int(status_line.split()[1]), headers, body)

    def closed_by_server(self) -> bool:
        """Wait (up to the socket timeout) for the server to close; True if it did."""
        try:
            while True:
                self._fill()
        except ConnectionClosed:
            return True
        except TimeoutError:
            return False

    def _fill(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError) as error:
            raise ConnectionClosed() from error
        if not data:
            raise ConnectionClosed()
        self._buffer += data

    def close(self) -> None:
        self.sock.close()


def worker_pids(parent: int) -> set[int]:
    """The worker processes `serve --workers N` (pid `parent`) spawned (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"spawn_main" in cmdline:
                found.add(int(entry.name))
    return found


async def wait_for_lock_waiters(db: asyncpg.Connection, count: int, within_s: float = 10) -> None:
    """Until exactly `count` of the writers' connections to `db`'s database wait for a
    lock (the tests that hold `spans` locked to stop the writer's flushes)."""
    database = await db.fetchval("SELECT current_database()")
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        waiting = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND "
            "application_name = 'telemetry-collector/writer' AND wait_event_type = 'Lock'",
            database,
        )
        if waiting == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} of the collector's connections never waited for a lock")


@asynccontextmanager
async def table_locked(database_url: str, table: str) -> AsyncIterator[None]:
    """Hold `table` (a constant of the test, never input) locked ACCESS EXCLUSIVE until the
    block ends: the writer's flushes into it wait inside their COPY while the database
    still answers, so nothing trips the outage path. Nothing is kept: the transaction ends
    with the connection."""
    blocker = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await blocker.execute(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        await blocker.close()


@asynccontextmanager
async def job_paused(database_url: str, name: str) -> AsyncIterator[None]:
    """Hold the advisory lock of the worker job `name`, so no running collector (the
    session's shared one included) runs a round of it until the block ends; waits for a
    round in progress to finish first."""

    async def nothing(_: object) -> None:
        return None

    holder = await asyncpg.connect(asyncpg_dsn(database_url))
    lock_id = Job(name, 0, nothing).lock_id
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", lock_id)
        yield
    finally:
        await holder.close()  # a session lock ends with its connection


def metric_sum(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples `name` whose labels include `labels`, in Prometheus text."""
    wanted = labels.items()
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name and wanted <= sample.labels.items()
    )


class LoopTurns:
    """Counts the event loop's turns while the block runs: a task that yields at each."""

    def __init__(self) -> None:
        self.turns = 0
        self._running = False
        self._task: asyncio.Task[None] | None = None

    async def _count(self) -> None:
        while self._running:
            self.turns += 1
            await asyncio.sleep(0)

    async def __aenter__(self) -> LoopTurns:
        self._running = True
        self._task = asyncio.create_task(self._count())
        return self

    async def __aexit__(self, *_: object) -> None:
        self._running = False
        assert self._task is not None
        await self._task
