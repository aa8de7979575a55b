"""The job runner keeps jobs alive: a job whose loop dies is restarted, and stopping ends it."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from app.telemetry import WORKER_RUNS
from app.workers.runner import Job, Workers


def _failed(job: str) -> float:
    return WORKER_RUNS.labels(job, "failed")._value.get()


async def test_a_job_that_dies_is_restarted(engine: AsyncEngine) -> None:
    # A round that raises CancelledError (a job awaiting something another task cancelled)
    # ends the job's loop, which catches only Exception; the supervisor starts it again.
    rounds = 0

    async def dies(_: AsyncEngine) -> None:
        nonlocal rounds
        rounds += 1
        raise asyncio.CancelledError()

    name = "test-dies"
    failed_before = _failed(name)
    workers = Workers(engine, [Job(name, 0.05, dies)], restart_delay_s=0.05)
    workers.start()
    for _ in range(200):
        if rounds >= 3:
            break
        await asyncio.sleep(0.05)
    await asyncio.wait_for(workers.stop(timeout_s=5), 10)
    assert rounds >= 3, "the job was not restarted after its loop died"
    assert _failed(name) - failed_before >= 2


async def test_stopping_cancels_a_round_that_does_not_end(engine: AsyncEngine) -> None:
    started = asyncio.Event()

    async def hangs(_: AsyncEngine) -> None:
        started.set()
        await asyncio.Event().wait()

    workers = Workers(engine, [Job("test-hangs", 60, hangs)])
    workers.start()
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.wait_for(workers.stop(timeout_s=0.2), 10)
