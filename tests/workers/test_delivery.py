"""Delivery against real HTTP receivers: retries with backoff, Retry-After, refusals, giving
up, and a hanging receiver that holds up nobody else."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from notify_kit import receiving
from prometheus_client import REGISTRY

from app.workers.delivery import (
    BACKOFF_MAX_S,
    Attempt,
    Deliverer,
    backoff_s,
    claim,
    record,
    retry_after_seconds,
)

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def queue_one(alerting, url: str, **options) -> int:
    """A channel to `url` with one notification queued at T0."""
    channel = await alerting.channel(url, group_wait="0s", **options)
    rule = await alerting.rule("ToolFails", [channel])
    await alerting.fire(rule, "ToolFails", {"tool": "search"}, at(0))
    assert len((await alerting.dispatch(at(0))).queued) == 1
    return channel


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    rng = random.Random(7)
    for attempts, full in [(1, 1.0), (2, 2.0), (3, 4.0), (9, 256.0), (30, BACKOFF_MAX_S)]:
        delay = backoff_s(attempts, rng)
        assert full / 2 <= delay <= full


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Mon, 30 Nov 2026 12:01:30 GMT", now) == 90
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_receiver_failing_three_times_gets_it_once_more_after_recovery(alerting) -> None:
    sent = sample("telemetry_notifications_total", channel_type="webhook", outcome="sent")
    failed = sample(
        "telemetry_notifications_total", channel_type="webhook", outcome="failed_attempt"
    )
    timed = sample("telemetry_notification_duration_seconds_count", channel_type="webhook")
    with receiving(500, 502, 503) as receiver:
        channel = await queue_one(alerting, receiver.url)
        deliverer = alerting.deliverer()
        await deliverer.round(alerting.engine, at(-1))  # nothing due yet
        assert sample("telemetry_notification_outbox_depth") == 1
        outcomes = []
        for moment in range(0, 3600, 60):
            outcomes += await alerting.deliver(at(moment), deliverer)
        assert outcomes == ["retry", "retry", "retry", "sent"]
        assert sample("telemetry_notification_outbox_depth") == 0
        assert (
            sample("telemetry_notifications_total", channel_type="webhook", outcome="sent")
            == sent + 1
        )
        assert (
            sample(
                "telemetry_notifications_total", channel_type="webhook", outcome="failed_attempt"
            )
            == failed + 3
        )
        assert (
            sample("telemetry_notification_duration_seconds_count", channel_type="webhook")
            == timed + 4
        )
        assert len(receiver.requests) == 4  # three failures, then exactly one delivery
        assert len({r.headers["idempotency-key"] for r in receiver.requests}) == 1
        [row] = await alerting.notifications(channel)
        assert (row["status"], row["attempts"], row["claimed_until"]) == ("sent", 4, None)
        assert row["last_error"] is None


async def test_backoff_spaces_the_retries_and_honours_retry_after(alerting) -> None:
    with receiving((429, {"Retry-After": "600"}), 500) as receiver:
        channel = await queue_one(alerting, receiver.url)
        assert await alerting.deliver(at(0)) == ["retry"]
        [row] = await alerting.notifications(channel)
        assert row["next_attempt_at"] >= at(600)
        assert "HTTP 429" in row["last_error"]
        assert await alerting.deliver(at(599)) == []  # not before Retry-After
        assert await alerting.deliver(at(600)) == ["retry"]
        [row] = await alerting.notifications(channel)
        assert at(600 + 0.5 * 2) <= row["next_attempt_at"] <= at(600 + 2)  # 2nd backoff
        assert await alerting.deliver(at(602)) == ["sent"]
        assert len(receiver.requests) == 3


async def test_a_refusing_receiver_is_given_up_at_once(alerting) -> None:
    given_up = sample("telemetry_notifications_total", channel_type="webhook", outcome="given_up")
    with receiving(default=400) as receiver:
        channel = await queue_one(alerting, receiver.url)
        assert await alerting.deliver(at(0)) == ["given_up"]
        assert (
            sample("telemetry_notifications_total", channel_type="webhook", outcome="given_up")
            == given_up + 1
        )
        for moment in (60, 600, 3000):
            assert await alerting.deliver(at(moment)) == []
        assert len(receiver.requests) == 1
        [row] = await alerting.notifications(channel)
        assert row["status"] == "failed" and row["attempts"] == 1
        assert row["last_error"].startswith("HTTP 400: ok") and "not retried" in row["last_error"]
        assert row["finished_at"] == at(0)


async def test_a_dead_receiver_is_given_up_after_the_configured_time(alerting) -> None:
    alerting.settings = alerting.settings.model_copy(update={"notification_give_up_after": "10m"})
    with receiving(default=503) as receiver:
        channel = await queue_one(alerting, receiver.url)
        outcomes = []
        for moment in range(0, 1200, 30):
            outcomes += await alerting.deliver(at(moment))
        assert outcomes[-1] == "given_up" and set(outcomes[:-1]) == {"retry"}
        [row] = await alerting.notifications(channel)
        assert row["status"] == "failed" and row["finished_at"] == at(600)
        assert row["last_error"].startswith("HTTP 503")
        # The last retry was moved to the deadline, so it was tried right at the end.
        assert row["attempts"] == len(receiver.requests) == len(outcomes)


async def test_an_unreachable_receiver_is_retried(alerting) -> None:
    with receiving() as gone:
        url = gone.url
    channel = await queue_one(alerting, url)  # the port is closed now
    assert await alerting.deliver(at(0)) == ["retry"]
    [row] = await alerting.notifications(channel)
    assert row["last_error"].startswith("ConnectError")
    assert "127.0.0.1" not in row["last_error"]  # the URL is a secret


async def test_a_hanging_receiver_delays_no_other_channel(alerting) -> None:
    with receiving(default=("hang", 6)) as slow, receiving() as fast:
        hanging = await alerting.channel(slow.url, group_wait="0s")
        healthy = await alerting.channel(fast.url, group_wait="0s")
        rule_slow = await alerting.rule("Slow", [hanging])
        rule_fast = await alerting.rule("Fast", [healthy])
        await alerting.fire(rule_slow, "Slow", {}, at(0))
        await alerting.dispatch(at(0))
        deliverer: Deliverer = alerting.deliverer()
        [stuck] = await deliverer.round(alerting.engine, at(0))
        # While the first send hangs, a new alert elsewhere is dispatched and delivered.
        await alerting.fire(rule_fast, "Fast", {}, at(1))
        await alerting.dispatch(at(1))
        [quick] = await deliverer.round(alerting.engine, at(1))
        assert await quick == "sent"
        assert not stuck.done() and len(fast.requests) == 1
        assert await stuck == "retry"  # notification_timeout (2s) ended the wait
        [row] = await alerting.notifications(hanging)
        assert row["last_error"] == "no answer within 2s"


async def test_rows_in_flight_are_not_claimed_twice(alerting) -> None:
    with receiving(default=("hang", 1)) as receiver:
        await queue_one(alerting, receiver.url)
        first, second = alerting.deliverer(), alerting.deliverer()
        tasks = await first.round(alerting.engine, at(0))
        assert len(tasks) == 1
        assert await second.round(alerting.engine, at(0)) == []  # leased to the first
        await asyncio.gather(*tasks)
        assert len(receiver.requests) == 1


async def test_a_result_after_the_lease_ran_out_is_left_to_the_new_holder(alerting) -> None:
    channel = await queue_one(alerting, "http://127.0.0.1:9/unused")
    [late] = await claim(alerting.engine, at(0), limit=10, lease_s=40)
    assert await claim(alerting.engine, at(39), limit=10, lease_s=40) == []
    [taken] = await claim(alerting.engine, at(41), limit=10, lease_s=40)  # lease ran out
    failed = Attempt(False, True, 503, "HTTP 503", None, 0.1)
    rng = random.Random(1)
    assert await record(alerting.engine, late, failed, now=at(42), give_up_s=3600, rng=rng) == (
        "lost"
    )
    done = Attempt(True, False, 200, None, None, 0.1)
    assert await record(alerting.engine, taken, done, now=at(43), give_up_s=3600, rng=rng) == (
        "sent"
    )
    [row] = await alerting.notifications(channel)
    assert (row["status"], row["attempts"], row["claimed_until"]) == ("sent", 2, None)
