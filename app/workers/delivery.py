"""Delivery: the worker that POSTs queued notifications (the outbox) to their receivers.

Contract:
- A round (job "notification-delivery") claims due rows — pending, next_attempt_at
  passed, not leased, and no other notification of the same channel and group in
  flight (so a group's notifications arrive in order) — with a lease:
  `UPDATE … SET claimed_until = now + timeout + margin … WHERE id IN (SELECT … FOR
  UPDATE SKIP LOCKED) RETURNING`, so two processes never take the same row. It spawns
  one asyncio task per row and returns at once: no round waits for a receiver, and a
  slow or dead receiver holds only its own tasks (each bounded by notification_timeout).
- Each attempt POSTs the stored payload as JSON to the channel's current URL (an
  Alertmanager's `/api/v2/alerts` for `alertmanager` channels) with the channel's headers
  plus `Idempotency-Key` and `X-Telemetry-Notification-Id` = the notification's UUID,
  the same on every attempt, so a receiver can drop the duplicates at-least-once
  delivery may bring (a lease that expires mid-send, a crash before the result is saved).
- 2xx: sent. Network errors, timeouts, 408, 429 and 5xx: retried with exponential
  backoff (1 s doubling to 5 min, with jitter), never sooner than Retry-After asks.
  Other answers (4xx, 3xx): failed at once. A notification still undelivered
  notification_give_up_after after it was queued is given up: status failed, last_error,
  finished_at (its last retry is scheduled at that deadline, so it is always tried).
- A notification superseded while in flight keeps its status if the attempt fails.
- A result is saved only under the lease it was claimed with: a process whose lease ran
  out (and whose row another process took over) leaves the row to the new holder.
- Metrics: telemetry_notifications_total{channel_type, outcome: sent, failed_attempt,
  given_up}, telemetry_notification_duration_seconds{channel_type}, and
  telemetry_notification_outbox_depth (pending rows, set after every round).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db.tables import channels, notifications
from app.domain.channels import ChannelSpec
from app.telemetry import NOTIFICATION_DURATION, NOTIFICATIONS, OUTBOX_DEPTH

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 300.0
LEASE_MARGIN_S = 30.0
CLAIM_BATCH = 64
MAX_IN_FLIGHT = 256
MAX_ERROR_CHARS = 500
USER_AGENT = "telemetry-collector"
RETRYABLE_STATUS = {408, 429}


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to POST for a channel."""

    channel_type: str
    url: str
    headers: dict[str, str]


def target_of(spec: ChannelSpec) -> Target:
    url = spec.url
    if spec.type == "alertmanager":
        url = url.rstrip("/") + "/api/v2/alerts"
    return Target(spec.type, url, dict(spec.headers))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST's result. `retryable` only matters when not `ok`."""

    ok: bool
    retryable: bool
    status_code: int | None
    error: str | None
    retry_after_s: float | None
    duration_s: float


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def _body_excerpt(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return f": {text[:200]}" if text else ""


async def post(
    client: httpx.AsyncClient,
    target: Target,
    payload: Any,
    notification_id: uuid.UUID,
    timeout_s: float,
) -> Attempt:
    """POST `payload` once; never raises for what the receiver or the network does."""
    headers = {
        **target.headers,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": str(notification_id),
        "X-Telemetry-Notification-Id": str(notification_id),
    }
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):  # the whole exchange, however it trickles
            response = await client.post(
                target.url, content=orjson.dumps(payload), headers=headers, timeout=timeout_s
            )
    except (TimeoutError, httpx.TimeoutException):
        elapsed = time.perf_counter() - started
        return Attempt(False, True, None, f"no answer within {timeout_s:g}s", None, elapsed)
    except httpx.HTTPError as error:
        # The message never includes the URL: it is a secret.
        reason = str(error) or type(error).__name__
        elapsed = time.perf_counter() - started
        return Attempt(False, True, None, f"{type(error).__name__}: {reason}", None, elapsed)
    elapsed = time.perf_counter() - started
    status = response.status_code
    if 200 <= status < 300:
        return Attempt(True, False, status, None, None, elapsed)
    retryable = status >= 500 or status in RETRYABLE_STATUS
    retry_after = retry_after_seconds(response.headers.get("retry-after"), datetime.now(UTC))
    error = f"HTTP {status}{_body_excerpt(response)}"
    if 300 <= status < 400:
        error = f"HTTP {status}: redirects are not followed; set the channel's URL to the target"
    return Attempt(False, retryable, status, error[:MAX_ERROR_CHARS], retry_after, elapsed)


def backoff_s(attempts: int, rng: random.Random) -> float:
    """Exponential backoff after the `attempts`-th failure, with jitter (half to full)."""
    delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, attempts - 1))
    return delay * rng.uniform(0.5, 1.0)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    payload: Any
    attempts: int
    created_at: datetime
    target: Target
    lease_until: datetime  # the lease this process holds: its results are saved only under it


async def claim(engine: AsyncEngine, now: datetime, *, limit: int, lease_s: float) -> list[Claimed]:
    """Lease up to `limit` due notifications to this process."""
    other = notifications.alias("in_flight")
    busy = exists().where(
        other.c.channel_id == notifications.c.channel_id,
        other.c.group_key == notifications.c.group_key,
        other.c.id != notifications.c.id,
        other.c.claimed_until > now,
    )
    due = (
        select(notifications.c.id)
        .where(
            notifications.c.status == "pending",
            notifications.c.next_attempt_at <= now,
            or_(notifications.c.claimed_until.is_(None), notifications.c.claimed_until <= now),
            ~busy,
        )
        .order_by(notifications.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=notifications)
    )
    lease_until = now + timedelta(seconds=lease_s)
    statement = (
        update(notifications)
        .where(notifications.c.id.in_(due.scalar_subquery()))
        .where(channels.c.id == notifications.c.channel_id)
        .values(
            claimed_until=lease_until,
            attempts=notifications.c.attempts + 1,
        )
        .returning(
            notifications.c.id,
            notifications.c.payload,
            notifications.c.attempts,
            notifications.c.created_at,
            channels.c.spec,
        )
    )
    async with engine.begin() as connection:
        rows = (await connection.execute(statement)).all()
    claimed = []
    for row in rows:
        spec = ChannelSpec.model_validate(row.spec)
        claimed.append(
            Claimed(row.id, row.payload, row.attempts, row.created_at, target_of(spec), lease_until)
        )
    return claimed


async def record(
    engine: AsyncEngine,
    item: Claimed,
    attempt: Attempt,
    *,
    now: datetime,
    give_up_s: float,
    rng: random.Random,
) -> str:
    """Store an attempt's result; returns the outcome: sent, retry or given_up, or "lost"
    when the lease had run out and another process took the notification over."""
    where = and_(notifications.c.id == item.id, notifications.c.claimed_until == item.lease_until)
    outcome = "sent"
    if attempt.ok:
        values: dict[str, Any] = {"status": "sent", "sent_at": now, "finished_at": now}
        values["last_error"] = None
    else:
        deadline = item.created_at + timedelta(seconds=give_up_s)
        if not attempt.retryable or now >= deadline:
            outcome = "given_up"
            reason = "" if attempt.retryable else " (not retried: the receiver refused it)"
            values = {
                "status": case((notifications.c.status == "pending", "failed"), else_="superseded"),
                "finished_at": now,
                "last_error": f"{attempt.error}{reason}",
            }
        else:
            outcome = "retry"
            delay = max(backoff_s(item.attempts, rng), attempt.retry_after_s or 0.0)
            next_attempt = min(now + timedelta(seconds=delay), deadline)
            values = {"next_attempt_at": next_attempt, "last_error": attempt.error}
    async with engine.begin() as connection:
        result = await connection.execute(
            update(notifications).where(where).values(claimed_until=None, **values)
        )
    return outcome if result.rowcount == 1 else "lost"


async def outbox_depth(engine: AsyncEngine) -> int:
    query = (
        select(func.count()).select_from(notifications).where(notifications.c.status == "pending")
    )
    async with engine.connect() as connection:
        return int(await connection.scalar(query) or 0)


def new_client() -> httpx.AsyncClient:
    # No connection cap: a hanging receiver must not hold the pool other receivers need.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=32)
    return httpx.AsyncClient(limits=limits, follow_redirects=False)


class Deliverer:
    """Claims due notifications and sends each in its own task; one per process."""

    def __init__(
        self,
        settings: Settings,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        rng: random.Random | None = None,
    ) -> None:
        self._timeout_s = settings.seconds("notification_timeout")
        self._give_up_s = settings.seconds("notification_give_up_after")
        self._max_in_flight = max_in_flight
        self._rng = rng or random.Random()
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[str]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def round(
        self, engine: AsyncEngine, now: datetime | None = None
    ) -> list[asyncio.Task[str]]:
        """Claim and spawn; returns the spawned tasks (a test may await them).

        With `now` given, results are recorded at that time too (tests drive the clock).
        """
        room = self._max_in_flight - len(self._tasks)
        spawned: list[asyncio.Task[str]] = []
        if room > 0:
            if self._client is None:
                self._client = new_client()
            at = now or datetime.now(UTC)
            lease_s = self._timeout_s + LEASE_MARGIN_S
            for item in await claim(engine, at, limit=min(room, CLAIM_BATCH), lease_s=lease_s):
                task = asyncio.create_task(self._deliver(engine, item, now))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                spawned.append(task)
        OUTBOX_DEPTH.set(await outbox_depth(engine))
        return spawned

    async def _deliver(self, engine: AsyncEngine, item: Claimed, now: datetime | None) -> str:
        assert self._client is not None
        kind = item.target.channel_type
        attempt = await post(self._client, item.target, item.payload, item.id, self._timeout_s)
        NOTIFICATION_DURATION.labels(kind).observe(attempt.duration_s)
        NOTIFICATIONS.labels(kind, "sent" if attempt.ok else "failed_attempt").inc()
        try:
            outcome = await record(
                engine,
                item,
                attempt,
                now=now or datetime.now(UTC),
                give_up_s=self._give_up_s,
                rng=self._rng,
            )
        except Exception:
            # The lease runs out and the row is tried again: at least once, same id.
            log.exception("could not record a delivery", extra={"notification": str(item.id)})
            return "unrecorded"
        if outcome == "given_up":
            NOTIFICATIONS.labels(kind, "given_up").inc()
            log.warning(
                "notification given up",
                extra={"notification": str(item.id), "error": attempt.error},
            )
        elif outcome == "retry":
            log.info(
                "notification attempt failed; will retry",
                extra={"notification": str(item.id), "error": attempt.error},
            )
        return outcome

    async def close(self, grace_s: float = 5.0) -> None:
        """Let in-flight sends finish for a moment, cancel the rest (their leases lapse
        and another round sends them again), and close the HTTP client."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None


async def probe(spec: ChannelSpec, payload: Any, timeout_s: float) -> Attempt:
    """Send one payload to a channel now (the channel test), outside the outbox."""
    async with new_client() as client:
        return await post(client, target_of(spec), payload, uuid.uuid4(), timeout_s)
