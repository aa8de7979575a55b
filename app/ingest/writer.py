"""Group-commit writer: one transaction and one COPY per table per flush, acked after COMMIT.

Requests hand the writer ready rows and wait. Flusher tasks take everything queued
(up to a batch limit), write it in one transaction, and only after COMMIT answer every
waiting request, so a 2xx always means durable data and the per-request cost of a
commit is shared by all requests that arrived while the previous flush was running.

The queue is bounded in rows: when full, `write` fails at once with `WriterSaturated`
(the API answers 503 with Retry-After) instead of holding memory without bound.

A database that stops answering (frozen, partitioned) is treated as down: when a flush
has run for a second, a probe checks that the database still responds; if it does not,
the breaker opens, every waiting request is answered 503 at once, and new ones are
refused until a probe finds the database back (`app/ingest/outage.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.partitions import PartitionManager
from app.ingest.outage import Breaker, Probe, is_unavailable
from app.telemetry import (
    DATABASE_ERRORS,
    INGEST_LAST_COMMIT,
    SIGNAL_OF_TABLE,
    WRITER_BATCH_REQUESTS,
    WRITER_BATCH_ROWS,
    WRITER_FLUSH_DURATION,
    WRITER_QUEUE_ROWS,
)

log = logging.getLogger(__name__)

# A flush running longer than this makes the watchdog ask whether the database still
# answers (a 20,000-row flush takes well under a second on a healthy server).
STALL_PROBE_AFTER_S = 1.0
WATCHDOG_INTERVAL_S = 0.25
# Rows per COPY statement: asyncpg encodes one without a pause for the loop, 5 to 6 ms for
# 1,000 span rows on a slow machine, a turn in which no connection (health checks
# included) is served. 250 keep a turn near the decoders' 2 ms slices; the extra statements
# cost no throughput measurable in bench/ingest.py (docs/operations.md).
COPY_SLICE_ROWS = 250


class WriterError(Exception):
    """Base of the writer's failures; each maps to one HTTP answer."""


class WriterSaturated(WriterError):
    """The queue is full: the client should retry later (503 + Retry-After)."""


class DatabaseUnavailable(WriterError):
    """PostgreSQL cannot be reached or refused the connection (503 + Retry-After)."""


class WriteRejected(WriterError):
    """PostgreSQL refused this request's rows themselves (a data error, not an outage)."""


@dataclass(slots=True)
class TableRows:
    """Rows for one partitioned table, in `columns` order, and the days they fall on."""

    table: str
    columns: Sequence[str]
    rows: list[tuple[Any, ...]]
    days: set[date] = field(default_factory=set)


# Work that must happen in the same transaction as a table's COPY, given the rows that
# were actually inserted (on a merge, rows already stored are not passed again).
AfterInsert = Callable[[asyncpg.Connection, list[tuple[Any, ...]]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class InsertHook:
    key_columns: Sequence[str]
    after_insert: AfterInsert
    # Partitioned tables the hook writes to, on the same days as the rows it is given.
    partitioned_tables: Sequence[str] = ()


@dataclass(slots=True)
class WriteRequest:
    parts: list[TableRows]
    future: asyncio.Future[None]
    # Set when the waiting request went away (client disconnected, shutdown): a flusher
    # that has not taken it yet drops it instead of writing for nobody.
    abandoned: bool = False

    @property
    def row_count(self) -> int:
        return sum(len(part.rows) for part in self.parts)


class GroupCommitWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        partitions: PartitionManager,
        *,
        max_batch_rows: int = 20000,
        max_queued_rows: int = 100000,
        flushers: int = 2,
        hooks: dict[str, InsertHook] | None = None,
        commit_timeout_s: float = 30.0,
        probe: Probe | None = None,
    ) -> None:
        self._engine = engine
        self._partitions = partitions
        self._max_batch_rows = max_batch_rows
        self._max_queued_rows = max_queued_rows
        self._flusher_count = flushers
        self._queue: asyncio.Queue[WriteRequest] = asyncio.Queue()
        self._queued_rows = 0
        self._tasks: list[asyncio.Task[None]] = []
        # Groups being flushed, by flusher: (monotonic start, requests).
        self._flushing: dict[int, tuple[float, list[WriteRequest]]] = {}
        self._probe = probe
        self.breaker = Breaker(probe or _answers)
        self._hooks = hooks or {}
        self._builtin_json: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()
        # Connections kept checked out between flushes: taking one from the pool costs a
        # ping and returning it a rollback (two round trips and about 0.2 ms of CPU per
        # flush). Any error discards the connection.
        self._held: list[AsyncConnection] = []
        self._commit_timeout_s = commit_timeout_s

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(index), name=f"writer-{index}")
            for index in range(self._flusher_count)
        ]
        if self._probe is not None:
            self._tasks.append(asyncio.create_task(self._watchdog(), name="writer-watchdog"))

    async def stop(self, timeout_s: float | None = None) -> None:
        """Finish what is queued within `timeout_s`, answer the rest 503, then stop."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            log.warning("writer stopped before its queue was empty; waiting requests answer 503")
        self._fail_waiting(DatabaseUnavailable("the collector is shutting down"))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while self._held:
            await _discard(self._held.pop(), invalidate=False)
        await self.breaker.close()

    async def write(self, parts: list[TableRows]) -> None:
        """Queue rows and return once they are committed; raises a `WriterError`."""
        parts = [part for part in parts if part.rows]
        if not parts:
            return
        request = WriteRequest(parts, asyncio.get_running_loop().create_future())
        count = request.row_count
        if self.breaker.is_open:
            raise DatabaseUnavailable("the database is unreachable")
        if self._queued_rows + count > self._max_queued_rows and self._queued_rows > 0:
            raise WriterSaturated(f"the writer has {self._queued_rows} rows waiting; retry shortly")
        self._queued_rows += count
        WRITER_QUEUE_ROWS.inc(count)
        self._queue.put_nowait(request)
        try:
            # Shielded: a hung database answers 503, but the flush itself is not cut off,
            # so a commit that does land is kept (a retry then merges as a duplicate).
            await asyncio.wait_for(asyncio.shield(request.future), self._commit_timeout_s)
        except TimeoutError:
            # The flush may still fail later; retrieve its exception so nothing is logged as lost.
            request.future.add_done_callback(_retrieve)
            raise DatabaseUnavailable(
                f"the database did not commit within {self._commit_timeout_s:g} s"
            ) from None
        except asyncio.CancelledError:
            request.abandoned = True
            request.future.add_done_callback(_retrieve)
            raise

    def _take(self) -> WriteRequest | None:
        """The next queued request that someone still waits for, or None if none is queued."""
        while not self._queue.empty():
            request = self._queue.get_nowait()
            if not request.abandoned:
                return request
            self._done([request])
        return None

    def _done(self, requests: list[WriteRequest]) -> None:
        rows = sum(request.row_count for request in requests)
        self._queued_rows -= rows
        WRITER_QUEUE_ROWS.dec(rows)
        for _ in requests:
            self._queue.task_done()

    async def _run(self, index: int) -> None:
        while True:
            first = await self._queue.get()
            if first.abandoned:
                self._done([first])
                continue
            group = [first]
            rows = first.row_count
            while rows < self._max_batch_rows:
                request = self._take()
                if request is None:
                    break
                group.append(request)
                rows += request.row_count
            self._flushing[index] = (time.monotonic(), group)
            try:
                await self._flush_group(group, rows)
            except Exception as error:  # never let one flush kill the loop
                log.exception("writer flush failed unexpectedly")
                _fail(group, WriteRejected(f"write failed: {error}"))
            finally:
                self._flushing.pop(index, None)
                self._done(group)

    async def _watchdog(self) -> None:
        """Probe the database when a flush takes long; open the breaker if it is silent."""
        probed_at = 0.0
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL_S)
            if self.breaker.is_open or not self._flushing:
                continue
            now = time.monotonic()
            oldest = min(started for started, _ in self._flushing.values())
            if now - oldest < STALL_PROBE_AFTER_S or now - probed_at < STALL_PROBE_AFTER_S:
                continue
            probed_at = now
            if not await self.breaker.responds():
                self._trip("a flush is waiting and the database does not answer")

    def _trip(self, reason: str) -> None:
        DATABASE_ERRORS.labels("unavailable").inc()
        self.breaker.trip(reason)
        self._fail_waiting(DatabaseUnavailable("the database is unreachable"))

    def _fail_waiting(self, error: WriterError) -> None:
        """Answer every queued and flushing request now; a flush that commits later is kept."""
        for _, group in self._flushing.values():
            _fail(group, error)
        while not self._queue.empty():
            request = self._queue.get_nowait()
            _fail([request], error)
            self._done([request])

    async def _flush_group(self, group: list[WriteRequest], rows: int) -> None:
        started = time.perf_counter()
        try:
            await self._write(group, merge=False)
        except asyncpg.UniqueViolationError:
            # A client retried an export we had committed: merge, skipping what exists.
            DATABASE_ERRORS.labels("conflict").inc()
            try:
                await self._write(group, merge=True)
            except Exception as error:
                await self._fail_or_isolate(group, error)
                return
        except Exception as error:
            await self._fail_or_isolate(group, error)
            return
        WRITER_FLUSH_DURATION.observe(time.perf_counter() - started)
        WRITER_BATCH_ROWS.observe(rows)
        WRITER_BATCH_REQUESTS.observe(len(group))
        committed_at = time.time()
        for table in {part.table for request in group for part in request.parts}:
            signal = SIGNAL_OF_TABLE.get(table)
            if signal:
                INGEST_LAST_COMMIT.labels(signal).set(committed_at)
        for request in group:
            if not request.future.done():
                request.future.set_result(None)

    async def _fail_or_isolate(self, group: list[WriteRequest], error: BaseException) -> None:
        if is_unavailable(error):
            _fail(group, DatabaseUnavailable("the database is unreachable"))
            self._trip(repr(error))
            return
        DATABASE_ERRORS.labels("data").inc()
        if len(group) == 1:
            log.warning("rows refused by the database", extra={"error": repr(error)})
            _fail(group, WriteRejected(f"the database refused the data: {error}"))
            return
        # One bad request must not sink the others that shared its transaction.
        for request in group:
            await self._flush_group([request], request.row_count)

    async def _write(self, group: list[WriteRequest], *, merge: bool) -> None:
        by_table: dict[str, TableRows] = {}
        for request in group:
            for part in request.parts:
                merged = by_table.get(part.table)
                if merged is None:
                    by_table[part.table] = TableRows(
                        part.table, part.columns, list(part.rows), set(part.days)
                    )
                else:
                    merged.rows.extend(part.rows)
                    merged.days.update(part.days)
        for merged in by_table.values():
            await self._partitions.ensure(merged.table, merged.days)
            hook = self._hooks.get(merged.table)
            for table in hook.partitioned_tables if hook else ():
                await self._partitions.ensure(table, merged.days)
        held = self._held.pop() if self._held else None
        if held is not None:
            try:
                await self._transaction(held, by_table, merge=merge)
            except BaseException as error:
                await _discard(held)
                if not isinstance(error, Exception) or not is_unavailable(error):
                    raise
                if any(request.future.done() for request in group):
                    # Answered already (503 while the database was silent): retrying
                    # would store what the client was told to send again.
                    raise
                # A connection kept from an earlier flush may have died with the server
                # since (a restart): retry once on a fresh one, as a pool's pre-ping would.
                # Should the lost transaction have committed after all, the retry meets
                # its rows and merges (unique violation), so nothing is written twice.
            else:
                self._held.append(held)
                return
        fresh = await self._engine.connect()
        try:
            await self._transaction(fresh, by_table, merge=merge)
        except BaseException:
            await _discard(fresh)
            raise
        self._held.append(fresh)

    async def _transaction(
        self, connection: AsyncConnection, by_table: dict[str, TableRows], *, merge: bool
    ) -> None:
        raw = (await connection.get_raw_connection()).driver_connection
        if raw not in self._builtin_json:
            # SQLAlchemy installs a Python jsonb codec (a call per value); rows carry
            # JSON text already, which asyncpg's built-in codec sends without one.
            # This engine is the writer's own, so no query expects decoded jsonb.
            await raw.reset_type_codec("jsonb", schema="pg_catalog")
            self._builtin_json.add(raw)
        async with raw.transaction():
            for merged in by_table.values():
                hook = self._hooks.get(merged.table)
                if merge:
                    inserted = await self._merge(raw, merged, hook)
                else:
                    columns = list(merged.columns)
                    # One COPY per slice from a plain list: asyncpg encodes a list without
                    # a coroutine step per row (an async iterator cost 0.5 us a row, a
                    # sixth of the encoding), and the event loop gets a turn between them.
                    for rows in _slices(merged.rows):
                        await raw.copy_records_to_table(merged.table, records=rows, columns=columns)
                    inserted = merged.rows
                if hook is not None and inserted:
                    await hook.after_insert(raw, inserted)

    async def _merge(
        self, raw: asyncpg.Connection, part: TableRows, hook: InsertHook | None
    ) -> list[tuple[Any, ...]]:
        """COPY into a staging table, insert what is new; return the rows inserted."""
        stage = f"stage_{part.table}"
        # Temporary tables live per connection; create once per pooled connection.
        await raw.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" (LIKE "{part.table}") ON COMMIT DELETE ROWS'
        )
        await raw.copy_records_to_table(
            stage, records=_sliced(part.rows), columns=list(part.columns)
        )
        columns = ", ".join(f'"{name}"' for name in part.columns)
        insert = (
            f'INSERT INTO "{part.table}" ({columns}) SELECT {columns} FROM "{stage}" '  # noqa: S608
            "ON CONFLICT DO NOTHING"
        )
        if hook is None:
            await raw.execute(insert)
            return part.rows
        returning = ", ".join(f'"{name}"' for name in hook.key_columns)
        keys = {tuple(record) for record in await raw.fetch(f"{insert} RETURNING {returning}")}
        positions = [list(part.columns).index(name) for name in hook.key_columns]
        # One row per inserted key: a batch may hold a row twice (a retry merged into the
        # group of its original), and ON CONFLICT DO NOTHING inserted it once.
        inserted = []
        for row in part.rows:
            key = tuple(row[i] for i in positions)
            if key in keys:
                keys.discard(key)
                inserted.append(row)
        return inserted


async def _discard(connection: AsyncConnection, *, invalidate: bool = True) -> None:
    """Give a held connection back; after an error, close it rather than pool it."""
    try:
        if invalidate:
            await connection.invalidate()
        await connection.close()
    except Exception as error:  # a dead connection may fail to close; it is gone anyway
        log.debug("writer connection not closed cleanly", extra={"error": repr(error)})


def _fail(group: list[WriteRequest], error: WriterError) -> None:
    for request in group:
        if not request.future.done():
            request.future.set_exception(error)


def _slices(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """`rows` in equal slices of at most `COPY_SLICE_ROWS` (1,001 rows: 201 × 4 and 197)."""
    if len(rows) <= COPY_SLICE_ROWS:
        return [rows]
    count = -(-len(rows) // COPY_SLICE_ROWS)
    size = -(-len(rows) // count)
    return [rows[start : start + size] for start in range(0, len(rows), size)]


async def _sliced(rows: list[tuple[Any, ...]]) -> AsyncIterator[tuple[Any, ...]]:
    """The rows, with a turn for the event loop every `COPY_SLICE_ROWS`.

    asyncpg encodes a COPY's rows without yielding while the socket takes them: 20,000
    span rows held the event loop for 100 to 230 ms, every other connection waiting.
    """
    for index, row in enumerate(rows):
        if index and not index % COPY_SLICE_ROWS:
            await asyncio.sleep(0)
        yield row


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


async def _answers() -> bool:
    return True
