"""This process's graceful shutdown, as seen by the requests still in flight.

On SIGTERM uvicorn stops taking connections and waits up to `GRACEFUL_S` for the requests
in flight; then it cancels them, and one that had not answered gets a 500. An ingest request
still waiting by then (its batch queued behind a slow flush) gives up `GIVE_UP_S` after the
shutdown began and answers 503 with Retry-After instead (app/api/body.py), so its client
retries; one that the server cancels all the same (its loop was starved past both
deadlines) answers that 503 too; a batch a flusher had already taken stays committed,
and the retry merges.
"""

from __future__ import annotations

import asyncio
import time

GRACEFUL_S = 10
GIVE_UP_S = GRACEFUL_S - 2

_began: float | None = None
_event: asyncio.Event | None = None


def begin() -> None:
    """The shutdown began (called on the event loop, by the server)."""
    global _began
    if _began is None:
        _began = time.monotonic()
    if _event is not None:
        _event.set()


def began() -> bool:
    """Whether this process's shutdown has begun."""
    return _began is not None


async def expired(after_s: float = GIVE_UP_S) -> None:
    """Returns `after_s` after the shutdown began; waits for ever while it has not."""
    global _event
    if _began is None:
        if _event is None:
            _event = asyncio.Event()
        await _event.wait()
    assert _began is not None
    await asyncio.sleep(max(0.0, _began + after_s - time.monotonic()))
