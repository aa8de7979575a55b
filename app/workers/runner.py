"""Periodic jobs inside the service, each behind a PostgreSQL advisory lock.

With several processes or replicas, each job runs once per interval: whoever takes the
lock runs it, the others skip that round. A failed round is logged and retried at the
next interval; a job whose loop dies all the same (a CancelledError from inside a job, an
error while reporting one) is restarted after `RESTART_DELAY_S`.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from app.telemetry import WORKER_RUNS

log = logging.getLogger(__name__)
RESTART_DELAY_S = 1.0


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    interval_s: float
    run: Callable[[AsyncEngine], Awaitable[None]]
    # Awaited once at shutdown, after the job's loop has ended (e.g. to finish sends).
    close: Callable[[], Awaitable[None]] | None = None

    @property
    def lock_id(self) -> int:
        # Stable across processes (unlike hash()), and namespaced away from other locks.
        return 7_340_000_000 + zlib.crc32(self.name.encode())


async def run_once(engine: AsyncEngine, job: Job) -> bool:
    """Run the job if no other process holds its lock; True when it ran."""
    async with engine.connect() as connection:
        # A session lock, taken and given back on the driver's connection outside any
        # transaction: one round trip each. Through SQLAlchemy each was a BEGIN, the SELECT
        # and a COMMIT, 2.1 ms of CPU per round with nothing to do, and the notification
        # jobs run every second in every process.
        raw = (await connection.get_raw_connection()).driver_connection
        if not await raw.fetchval("SELECT pg_try_advisory_lock($1)", job.lock_id):
            return False
        try:
            await job.run(engine)
        finally:
            await raw.fetchval("SELECT pg_advisory_unlock($1)", job.lock_id)
    return True


async def run_forever(engine: AsyncEngine, job: Job, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            ran = await run_once(engine, job)
            WORKER_RUNS.labels(job.name, "ok" if ran else "skipped").inc()
        except Exception:  # a failed round is logged and retried next interval
            WORKER_RUNS.labels(job.name, "failed").inc()
            log.exception("worker job failed", extra={"job": job.name})
        try:
            await asyncio.wait_for(stop.wait(), timeout=job.interval_s)
        except TimeoutError:
            pass


async def supervised(
    engine: AsyncEngine, job: Job, stop: asyncio.Event, restart_delay_s: float = RESTART_DELAY_S
) -> None:
    """`run_forever`, restarted whenever it ends other than by `stop` or by cancellation."""
    while not stop.is_set():
        try:
            await run_forever(engine, job, stop)
            continue
        except asyncio.CancelledError as error:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this task is being cancelled: shutting down
            died: BaseException = error
        except Exception as error:
            died = error
        WORKER_RUNS.labels(job.name, "failed").inc()
        log.error("worker job died; restarting", extra={"job": job.name}, exc_info=died)
        try:
            await asyncio.wait_for(stop.wait(), timeout=restart_delay_s)
        except TimeoutError:
            pass


class Workers:
    def __init__(
        self, engine: AsyncEngine, jobs: list[Job], restart_delay_s: float = RESTART_DELAY_S
    ) -> None:
        self._engine = engine
        self._jobs = jobs
        self._restart_delay_s = restart_delay_s
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(
                supervised(self._engine, job, self._stop, self._restart_delay_s), name=job.name
            )
            for job in self._jobs
        ]

    async def stop(self, timeout_s: float | None = None) -> None:
        """Let running rounds finish within `timeout_s`, then cancel them."""
        self._stop.set()
        running = asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(asyncio.shield(running), timeout_s)
        except TimeoutError:
            for task in self._tasks:
                task.cancel()
            await running
        for job in self._jobs:
            if job.close is not None:
                try:
                    await asyncio.wait_for(job.close(), timeout_s)
                except TimeoutError:
                    log.warning("worker job did not close in time", extra={"job": job.name})
