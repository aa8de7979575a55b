"""The notification dispatcher: from `alerts` rows to queued notifications (the outbox).

One round (job "notification-dispatch", every alert_dispatch_interval, behind the job's
advisory lock) reads (app/workers/dispatch_snapshot.py), for every channel:
- the firing alerts of rules whose `spec.channels` list it (same project);
- its aggregation groups (`notification_groups`) and the alerts they announced as firing
  that have resolved since — found by id, so a deleted rule's resolved alerts still go
  out;
- the project's active silences.
It decides each group with app/domain/notify_groups.decide and, for each group whose
state changed, writes in ONE transaction the group row and, when a notification is due,
the outbox row (`notifications`, status pending, a new UUID) — marking older pending
notifications of the same channel and group `superseded`, and carrying the alerts those
announced as resolved into the new one, so a resolve is never lost to superseding.
Group rows are compare-and-set (insert-if-absent, update/delete only if unchanged since
read), so two dispatchers can never both queue the same notification.

Channel options: `group_by` (default ["alertname"], "..." every label), `group_wait`,
`group_interval`, `repeat_interval` (defaults from the settings), `send_resolved`,
`max_alerts`. `alertmanager` channels have one group with every alert, no wait, every
change at the next round, and firing alerts re-sent every alertmanager_resend_delay with
endsAt = now + 4 × max(alert_eval_interval, alertmanager_resend_delay).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.db.tables import alerts, notification_groups, notifications
from app.domain.channels import DEFAULT_GROUP_BY, ChannelSpec
from app.domain.durations import parse_duration_seconds
from app.domain.notify_groups import (
    AlertRecord,
    Decision,
    GroupState,
    Timing,
    decide,
    group_key,
    group_labels,
    sort_alerts,
)
from app.domain.notify_payloads import Envelope, build_payload
from app.workers.dispatch_snapshot import (
    ALERT_COLUMNS,
    Channel,
    Snapshot,
    alert_record,
    read_snapshot,
)

log = logging.getLogger(__name__)

WRITE_BATCH = 200


@dataclass(slots=True)
class RoundReport:
    """What a round did (for tests and logs)."""

    queued: list[uuid.UUID] = field(default_factory=list)
    groups_written: int = 0
    lost_races: int = 0


def channel_timing(spec: ChannelSpec, settings: Settings) -> Timing:
    if spec.type == "alertmanager":
        return Timing(0.0, 0.0, settings.seconds("alertmanager_resend_delay"), True)
    return Timing(
        group_wait_s=_seconds(spec.group_wait, settings, "alert_group_wait"),
        group_interval_s=_seconds(spec.group_interval, settings, "alert_group_interval"),
        repeat_interval_s=_seconds(spec.repeat_interval, settings, "alert_repeat_interval"),
        send_resolved=spec.send_resolved,
    )


def _seconds(value: str | None, settings: Settings, default: str) -> float:
    return parse_duration_seconds(value) if value is not None else settings.seconds(default)


def channel_group_by(spec: ChannelSpec) -> Sequence[str] | None:
    """The label names that split a channel's alerts into groups (None: every label)."""
    if spec.type == "alertmanager":
        return ()
    if spec.group_by_all:
        return None
    return spec.group_by if spec.group_by is not None else DEFAULT_GROUP_BY


def alertmanager_valid_for_s(settings: Settings) -> float:
    """Prometheus' rule: a sent alert is valid for 4 × max(eval interval, resend delay)."""
    return 4 * max(
        settings.seconds("alert_eval_interval"), settings.seconds("alertmanager_resend_delay")
    )


def plan_channel(
    channel: Channel, snapshot: Snapshot, timing: Timing, now: datetime
) -> list[tuple[GroupState | None, Decision]]:
    """(stored state, decision) for each of the channel's groups that must be written."""
    group_by = channel_group_by(channel.spec)
    routed: dict[str, tuple[dict[str, str], list[AlertRecord]]] = {}
    for alert in snapshot.firing.get(channel.id, ()):
        labels = group_labels(alert.labels, group_by)
        routed.setdefault(group_key(labels), (labels, []))[1].append(alert)
    stored = snapshot.groups.get(channel.id, {})
    planned = []
    for key in sorted(set(routed) | set(stored)):
        state = stored.get(key)
        labels, members = routed.get(key, (dict(state.labels) if state else {}, []))
        if state is not None:
            members = members + [
                snapshot.resolved[alert_id]
                for alert_id in sorted(state.notified_firing)
                if alert_id in snapshot.resolved
            ]
        decision = decide(state, key=key, labels=labels, members=members, timing=timing, now=now)
        if decision.changed or decision.alerts:
            planned.append((state, decision))
    return planned


class _LostRace(Exception):
    """Another dispatcher changed the group since it was read."""


def _same_state(state: GroupState) -> Any:
    return and_(
        notification_groups.c.next_flush_at == state.next_flush_at,
        notification_groups.c.last_notified_at.is_not_distinct_from(state.last_notified_at),
        notification_groups.c.notified_firing == sorted(state.notified_firing),
    )


async def _write_group(
    connection: AsyncConnection, channel: Channel, key: str, old: GroupState | None, new: Decision
) -> None:
    where = and_(
        notification_groups.c.channel_id == channel.id, notification_groups.c.group_key == key
    )
    state = new.state
    if state is None:
        if old is not None:
            result = await connection.execute(
                notification_groups.delete().where(where, _same_state(old))
            )
            if result.rowcount != 1:
                raise _LostRace
        return
    values = {
        "group_labels": dict(state.labels),
        "next_flush_at": state.next_flush_at,
        "last_notified_at": state.last_notified_at,
        "notified_firing": sorted(state.notified_firing),
    }
    if old is None:
        statement = (
            pg_insert(notification_groups)
            .values(
                channel_id=channel.id,
                group_key=key,
                project_id=channel.project_id,
                created_at=state.created_at,
                **values,
            )
            .on_conflict_do_nothing()
            .returning(notification_groups.c.group_key)
        )
        if (await connection.execute(statement)).first() is None:
            raise _LostRace
        return
    result = await connection.execute(
        update(notification_groups).where(where, _same_state(old)).values(**values)
    )
    if result.rowcount != 1:
        raise _LostRace


async def _carried_resolved(
    connection: AsyncConnection, channel: Channel, key: str, now: datetime, sent: set[int]
) -> list[AlertRecord]:
    """Supersede the group's pending notifications; their resolved alerts not in the new
    one are returned to be carried on."""
    superseded = await connection.execute(
        update(notifications)
        .where(
            notifications.c.channel_id == channel.id,
            notifications.c.group_key == key,
            notifications.c.status == "pending",
        )
        .values(status="superseded", finished_at=now)
        .returning(notifications.c.resolved_alert_ids)
    )
    carried = {alert_id for row in superseded for alert_id in row.resolved_alert_ids} - sent
    if not carried:
        return []
    rows = await connection.execute(
        select(*ALERT_COLUMNS).where(alerts.c.id.in_(sorted(carried)), alerts.c.state == "resolved")
    )
    return [alert_record(row, False) for row in rows]


async def _write(
    connection: AsyncConnection,
    channel: Channel,
    old: GroupState | None,
    decision: Decision,
    settings: Settings,
    now: datetime,
) -> uuid.UUID | None:
    state = decision.state or old
    assert state is not None
    key = state.key
    await _write_group(connection, channel, key, old, decision)
    if not decision.alerts:
        return None
    sent = list(decision.alerts)
    sent += await _carried_resolved(connection, channel, key, now, {a.id for a in sent})
    if not channel.spec.send_resolved:
        sent = [alert for alert in sent if alert.firing]
    sent = sort_alerts(sent)
    envelope = Envelope(
        receiver=channel.spec.name,
        group_key=key,
        group_labels=state.labels,
        external_url=settings.external_url,
        max_alerts=channel.spec.max_alerts,
    )
    payload = build_payload(
        channel.spec.type,
        envelope,
        sent,
        now=now,
        valid_for_s=alertmanager_valid_for_s(settings),
    )
    notification_id = uuid.uuid4()
    await connection.execute(
        insert(notifications).values(
            id=notification_id,
            project_id=channel.project_id,
            channel_id=channel.id,
            group_key=key,
            status="pending",
            payload=payload,
            resolved_alert_ids=sorted(alert.id for alert in sent if not alert.firing),
            next_attempt_at=now,
            created_at=now,
        )
    )
    return notification_id


async def dispatch_round(
    engine: AsyncEngine, settings: Settings, now: datetime | None = None
) -> RoundReport:
    """One look at every group of every channel; queues the notifications that are due."""
    now = now or datetime.now(UTC)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="REPEATABLE READ")
        snapshot = await read_snapshot(connection, now)
    planned = [
        (channel, old, decision)
        for channel in snapshot.channels
        for old, decision in plan_channel(
            channel, snapshot, channel_timing(channel.spec, settings), now
        )
    ]
    report = RoundReport()
    # Many groups per transaction (one commit, not one per group): a group's row and its
    # outbox row commit together. A lost race is found by the group's first statement,
    # which then changed nothing, so the others in the transaction go on.
    for start in range(0, len(planned), WRITE_BATCH):
        async with engine.begin() as connection:
            for channel, old, decision in planned[start : start + WRITE_BATCH]:
                try:
                    queued = await _write(connection, channel, old, decision, settings, now)
                except _LostRace:
                    report.lost_races += 1
                    continue
                report.groups_written += 1
                if queued is not None:
                    report.queued.append(queued)
    return report
