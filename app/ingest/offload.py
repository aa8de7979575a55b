"""CPU-heavy ingest steps (decoding, enrichment, row building) on threads, off the event loop.

Decoding a 2,000-span protobuf batch and building its rows takes about 50 ms of CPU, an
11 MB batch more than a second; on the event loop that time is taken from every other
connection of the process, health checks included. On a thread the loop keeps answering:
it gets the GIL back at the interpreter's switch interval (5 ms) whenever it has work.
Threads add no parallelism for Python code, so two per process are enough for a small
batch to get through while a large one is decoded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
THREADS = 2


class Runner(Protocol):
    """Runs a synchronous, CPU-bound step and returns its result."""

    async def __call__(self, function: Callable[..., T], /, *args: Any) -> T: ...


async def inline(function: Callable[..., T], /, *args: Any) -> T:
    """A `Runner` that runs the step on the event loop (tests, small callers)."""
    return function(*args)


class Offload:
    """A `Runner` backed by this process's own small thread pool."""

    def __init__(self, threads: int = THREADS) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ingest")

    async def __call__(self, function: Callable[..., T], /, *args: Any) -> T:
        # A step not started yet is dropped when the awaiting request is cancelled.
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
