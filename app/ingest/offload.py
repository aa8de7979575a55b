"""CPU-heavy ingest steps, kept from holding up the event loop: in slices on it, or on threads.

Decoding a 2,000-span protobuf batch and building its rows takes about 50 ms of CPU, an
11 MB batch more than a second; run whole on the event loop, that time is taken from every
other connection of the process, health checks included.

Threads were the first answer, and they keep the loop from being blocked, but not from
being slowed: a thread running Python shares the interpreter lock with the loop, and the
loop gives it up at every system call (each socket it reads or writes, each epoll wait).
Taking it back from a busy thread means waiting for the thread to be told to drop it and
for the loop's thread to be scheduled again, so a loop turn that touches dozens of sockets
paid dozens of such waits: on a machine with more runnable threads than cores (the usual
case under overload), a wait is a trip through the kernel's run queue, and /healthz took
100 ms to 2 s at p99. Measured from inside (see docs/operations.md), 80 % of each
stall was the loop's thread runnable but waiting for a CPU, scheduled in 25 times per stall.

So the steps that dominate ingest (OTLP span and log decoding, enrichment and row
building) are
generators that `yield` every few items, and `sliced` runs them on the loop's own thread a
slice of at most `SLICE_S` at a time, one slice per loop turn for the whole process, so
that no thread competes for the lock and a loop turn holds at most one slice. As with the
threads, at most `THREADS` requests are being worked on at once and the others wait their
turn in order: sharing the CPU among every waiting request would make all of them slow
together, and under overload spend work on requests whose senders then give up.

Every decoder (OTLP protobuf and JSON, all three signals; native items), enrichment and
row building, metric series identities, and a flush's rollup and catalog rows (`in_turns`)
are sliced. Only gzip inflation, which releases the lock while it works, runs on this
process's small thread pool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar, cast

T = TypeVar("T")
THREADS = 2
# Work run per loop turn by `sliced`: the loop's other callbacks (health checks, refusals,
# answers) wait at most this long for a turn, plus one step. 2 ms rather than 4 halved the
# median /healthz under overload at no measurable cost in throughput (docs/operations.md).
SLICE_S = 0.002

# A sliced step: a generator that yields (None) where it may pause and returns its result.
Steps = Generator[None, None, T]


class Runner(Protocol):
    """Runs a synchronous, CPU-bound step and returns its result."""

    async def __call__(self, function: Callable[..., T], /, *args: Any) -> T: ...


async def inline(function: Callable[..., T], /, *args: Any) -> T:
    """A `Runner` that runs the step on the event loop (tests, small callers)."""
    return function(*args)


def drive(steps: Steps[T]) -> T:
    """Run sliced steps to the end at once (synchronous callers, tests)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


class Offload:
    """A `Runner` backed by this process's own small thread pool, and the loop's slices."""

    def __init__(self, threads: int = THREADS) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ingest")
        self._threads = threads
        self._turn: asyncio.Lock | None = None
        self._lanes: asyncio.Semaphore | None = None
        self.slices = 0  # slices run so far (for tests and diagnostics)

    async def __call__(self, function: Callable[..., T], /, *args: Any) -> T:
        # A step not started yet is dropped when the awaiting request is cancelled.
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def sliced(self, steps: Steps[T]) -> T:
        """Run `steps` on the event loop, a slice of about `SLICE_S` per turn.

        At most as many steps as there are threads run at once, first come, first served
        (a cancelled request that has not started costs nothing). Their slices take turns
        (an `asyncio.Lock` is first come, first served), and each turn ends with a pass
        through the loop, so a loop turn runs at most one slice. A cancelled request stops
        between slices.
        """
        if self._turn is None or self._lanes is None:
            self._turn = asyncio.Lock()
            self._lanes = asyncio.Semaphore(self._threads)
        try:
            async with self._lanes:
                while True:
                    async with self._turn:
                        self.slices += 1
                        finished, value = _one_slice(steps)
                        if finished:
                            return cast(T, value)
                        # Let every callback that became ready meanwhile run before the next slice.
                        await asyncio.sleep(0)
        finally:
            steps.close()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


async def in_turns(steps: Steps[T]) -> T:
    """Run `steps` on the event loop, a slice of about `SLICE_S` per loop turn, outside the
    lanes: for work already under way that must not wait behind requests (a flush's
    rollups and catalog rows, computed inside its transaction)."""
    try:
        while True:
            finished, value = _one_slice(steps)
            if finished:
                return cast(T, value)
            await asyncio.sleep(0)
    finally:
        steps.close()


def _one_slice(steps: Steps[T]) -> tuple[bool, T | None]:
    """Run `steps` for about `SLICE_S`: (True, its result) if they ended, else (False, None)."""
    clock = time.perf_counter
    deadline = clock() + SLICE_S
    try:
        while clock() < deadline:
            next(steps)
    except StopIteration as done:
        return True, done.value
    return False, None


async def sliced(run: Runner, steps: Steps[T]) -> T:
    """`steps` in slices on the loop when `run` is an `Offload`, else all at once."""
    if isinstance(run, Offload):
        return await run.sliced(steps)
    return drive(steps)
