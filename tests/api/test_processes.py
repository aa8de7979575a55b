"""`serve --workers N`: a worker process that dies is replaced, and the whole stops cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from support import Collector


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
                found.add(int(entry.name))
    return found


async def test_a_dead_worker_is_replaced(start_collector: Callable[..., Collector]) -> None:
    collector = start_collector(workers=2)
    assert collector.process is not None
    parent = collector.process.pid
    deadline = time.monotonic() + 30
    while len(workers := _children(parent)) < 2:
        assert time.monotonic() < deadline, "the workers did not start"
        await asyncio.sleep(0.1)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    while (replaced := _children(parent)) == workers or len(replaced) < 2:
        assert time.monotonic() < deadline + 30, "the dead worker was not replaced"
        await asyncio.sleep(0.1)
    assert victim not in replaced
    async with httpx.AsyncClient(base_url=collector.url) as http:
        for _ in range(10):  # new connections land on either worker
            assert (await http.get("/healthz", headers={"connection": "close"})).status_code == 200
    collector.stop()
    assert collector.process.returncode == 0
