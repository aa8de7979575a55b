"""`serve --workers N`: a worker process that dies is replaced, and the whole stops cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

import httpx
from support import Collector, worker_pids


async def test_a_dead_worker_is_replaced(start_collector: Callable[..., Collector]) -> None:
    collector = start_collector(workers=2)
    assert collector.process is not None
    parent = collector.process.pid
    deadline = time.monotonic() + 30
    while len(workers := worker_pids(parent)) < 2:
        assert time.monotonic() < deadline, "the workers did not start"
        await asyncio.sleep(0.1)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    while (replaced := worker_pids(parent)) == workers or len(replaced) < 2:
        assert time.monotonic() < deadline + 30, "the dead worker was not replaced"
        await asyncio.sleep(0.1)
    assert victim not in replaced
    async with httpx.AsyncClient(base_url=collector.url) as http:
        for _ in range(10):  # new connections land on either worker
            assert (await http.get("/healthz", headers={"connection": "close"})).status_code == 200
    collector.stop()
    assert collector.process.returncode == 0
