"""Telling a database outage from bad data, and the writer's breaker while it lasts.

A database that is down refuses connections; one that is frozen (a stopped process, a
network partition, a hung proxy) accepts them and never answers. Both must be answered the
same way, with 503 + Retry-After, and quickly: clients keep their data and retry. The
breaker opens on the first sign of either, refuses writes at once while open, and closes
when a probe finds the database answering again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)

# Connection errors, insufficient resources, operator intervention (shutdown, and 57014:
# a statement cancelled by statement_timeout, which here means a database too slow to use).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P", "57014")
PROBE_INTERVAL_S = 0.5


def is_unavailable(error: BaseException | None) -> bool:
    """True for outages (connection refused or lost, server shutting down, timeouts)."""
    seen = 0
    while error is not None and seen < 5:
        if isinstance(
            error,
            (
                OSError,
                ConnectionError,
                TimeoutError,
                asyncio.TimeoutError,
                asyncpg.exceptions.ConnectionDoesNotExistError,
                asyncpg.exceptions.InterfaceError,
                # The connection's protocol state is broken ("cannot switch to state …;
                # another operation is in progress"), as when the server ended the session
                # under an operation: the connection is gone, not the data at fault.
                asyncpg.exceptions.InternalClientError,
                sa_exc.TimeoutError,
            ),
        ):
            return True
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
            return True
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        # An error raised while cleaning up (a ROLLBACK on a dead connection) hides the
        # one that caused it in __context__.
        error = getattr(error, "orig", None) or error.__cause__ or error.__context__
        seen += 1
    return False


Probe = Callable[[], Awaitable[bool]]


class Breaker:
    """Open while the database is away. `probe()` answers whether the database responds."""

    def __init__(self, probe: Probe) -> None:
        self._probe = probe
        self._opened_at: float | None = None
        self._probing: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def trip(self, reason: str) -> None:
        """Open (if closed) and probe until the database answers again."""
        if self._opened_at is not None:
            return
        self._opened_at = time.monotonic()
        log.warning(
            "database unavailable; ingest answers 503 until it is back", extra={"reason": reason}
        )
        self._probing = asyncio.get_running_loop().create_task(
            self._probe_until_back(), name="database-probe"
        )

    async def responds(self) -> bool:
        try:
            return await self._probe()
        except Exception:  # a probe that fails in any way found no database
            return False

    async def _probe_until_back(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            if await self.responds():
                break
        assert self._opened_at is not None
        log.warning(
            "database answers again",
            extra={"unavailable_s": round(time.monotonic() - self._opened_at, 2)},
        )
        self._opened_at = None
        self._probing = None

    async def close(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
            await asyncio.gather(self._probing, return_exceptions=True)
