"""Benchmark plumbing: a scratch database, a collector process, concurrent posting."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support import Collector  # noqa: E402

from app.db.engine import asyncpg_dsn  # noqa: E402
from app.db.migrate import upgrade_to_head  # noqa: E402


def server_url(explicit: str | None) -> str:
    """--database-url, BENCH_/TEST_DATABASE_URL, the local server if it answers, else embedded."""
    url = explicit or os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    probe = subprocess.run(
        ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False, capture_output=True
    )
    if probe.returncode == 0:
        return "postgresql://postgres@127.0.0.1:5432/postgres"
    from app.db.embedded import start_embedded

    return start_embedded(ROOT / ".data" / "bench", database="postgres")


class ScratchDatabase:
    """A new migrated database, dropped on exit."""

    def __init__(self, server: str, keep: bool = False) -> None:
        self.keep = keep
        self.name = f"telemetry_bench_{uuid.uuid4().hex[:8]}"
        self.admin = asyncpg_dsn(make_url(server).set(database="postgres").render_as_string(False))
        self.url = make_url(server).set(database=self.name).render_as_string(False)

    async def __aenter__(self) -> ScratchDatabase:
        connection = await asyncpg.connect(self.admin)
        await connection.execute(f'CREATE DATABASE "{self.name}"')
        await connection.close()
        await asyncio.to_thread(upgrade_to_head, self.url)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.keep:
            print(f"kept database {self.url}")
            return
        connection = await asyncpg.connect(self.admin)
        await connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        await connection.close()

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(asyncpg_dsn(self.url))


def start_collector(database_url: str, workers: int, log_dir: Path) -> Collector:
    log_dir.mkdir(parents=True, exist_ok=True)
    return Collector(database_url, env={"TELEMETRY_AUTH_ENABLED": "false"}, workers=workers).start(
        log_dir
    )


async def post_all(
    url: str, bodies: Sequence[bytes], clients: int, content_type: str
) -> tuple[float, int]:
    """POST every body from `clients` concurrent connections; (seconds, non-200 answers)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    failures = 0

    async def client() -> None:
        nonlocal failures
        async with httpx.AsyncClient(timeout=120) as session:
            while not queue.empty():
                body = queue.get_nowait()
                response = await session.post(
                    url, content=body, headers={"Content-Type": content_type}
                )
                if response.status_code != 200:
                    failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, failures


async def export_all(
    target: str, method: str, bodies: Sequence[bytes], clients: int
) -> tuple[float, int]:
    """Call the OTLP/gRPC `method` with every body from `clients` concurrent channels (one
    HTTP/2 connection each, as `clients` exporters); (seconds, non-OK answers)."""
    import grpc

    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    failures = 0

    async def client() -> None:
        nonlocal failures
        # Channels of one process to one target share a connection by default (gRPC's
        # global subchannel pool): a local pool gives each its own, as separate exporters.
        options = [("grpc.use_local_subchannel_pool", 1)]
        async with grpc.aio.insecure_channel(target, options=options) as channel:
            export = channel.unary_unary(method, request_serializer=None)
            while not queue.empty():
                body = queue.get_nowait()
                try:
                    await export(body, timeout=120)
                except grpc.aio.AioRpcError:
                    failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, failures


async def seed_spans(url: str, spans: int, clients: int, spread_s: float) -> float:
    """POST `spans` generated spans (bench/datagen.py) spread over the last `spread_s`
    seconds to a collector's /v1/traces; returns the seconds it took."""
    from datagen import span_batches

    now = time.time_ns()
    started = time.perf_counter()
    # Encode in slices so a million spans never sit in memory as protobuf objects at once.
    slice_size = 100_000
    for offset in range(0, spans, slice_size):
        bodies = [
            request.SerializeToString()
            for request in span_batches(
                min(slice_size, spans - offset), 512, seed=offset + 1, end_ns=now, spread_s=spread_s
            )
        ]
        _, failures = await post_all(f"{url}/v1/traces", bodies, clients, "application/x-protobuf")
        assert failures == 0, f"{failures} span batches failed"
    return time.perf_counter() - started


def backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds so far of each local PostgreSQL backend connected to `database`, by pid
    (empty when the server is not on this machine)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                title = cmdline.read().decode(errors="replace")
            if not title.startswith("postgres") or f" {database} " not in title:
                continue
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def backend_cpu_since(database: str, before: dict[int, float]) -> float:
    """CPU seconds the backends of `database` used since `before` (backend_cpu's answer);
    backends that exited in between are not counted."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in backend_cpu(database).items())


async def backend_names(connection: asyncpg.Connection) -> dict[int, str]:
    """The application_name of each backend connected to `connection`'s database, by pid:
    the collector names its pools (`telemetry-collector/writer`, `telemetry-collector` for
    queries and background jobs)."""
    rows = await connection.fetch(
        "SELECT pid, application_name FROM pg_stat_activity WHERE datname = current_database()"
    )
    return {row["pid"]: row["application_name"] for row in rows}


def cpu_by_name(
    before: dict[int, float], after: dict[int, float], names: dict[int, str]
) -> dict[str, float]:
    """The CPU seconds backends used between two of backend_cpu's answers, summed per
    application_name (`names`; pids not named: "other")."""
    spent: dict[str, float] = {}
    for pid, seconds in after.items():
        name = names.get(pid) or "other"
        spent[name] = spent.get(name, 0.0) + seconds - before.get(pid, 0.0)
    return spent


async def raw_copy(
    database: ScratchDatabase,
    table: str,
    columns: Sequence[str],
    chunks: Sequence[list[tuple]],
    clients: int,
    cpu: dict[str, float] | None = None,
) -> float:
    """COPY the same rows into a scratch copy of `table` from `clients` connections.

    `cpu`, when given, receives the CPU seconds used during the COPYs by PostgreSQL's
    backends ("postgres") and by this process ("client").
    """
    scratch = f"scratch_{table}"
    setup = await database.connect()
    await setup.execute(f'CREATE TABLE "{scratch}" (LIKE "{table}" INCLUDING INDEXES)')
    await setup.close()
    connections = [await database.connect() for _ in range(clients)]
    queue: asyncio.Queue[list[tuple]] = asyncio.Queue()
    for chunk in chunks:
        queue.put_nowait(chunk)

    async def worker(connection: asyncpg.Connection) -> None:
        while not queue.empty():
            rows = queue.get_nowait()
            await connection.copy_records_to_table(scratch, records=rows, columns=list(columns))

    backends, own = backend_cpu(database.name), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(connection) for connection in connections))
    elapsed = time.perf_counter() - started
    if cpu is not None:
        cpu["client"] = time.process_time() - own
        cpu["postgres"] = backend_cpu_since(database.name, backends)
    for connection in connections:
        await connection.close()
    return elapsed
