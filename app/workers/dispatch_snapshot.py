"""What a dispatch round decides from, read in one snapshot: channels, the firing alerts
routed to each, the stored aggregation groups, and the announced alerts that have
resolved since.

- A firing alert is routed to the channels its rule's `spec.channels` lists, and only to
  channels of the alert's own project.
- Resolved alerts are found by the ids the groups announced as firing (not through
  their rule), so the resolve of a deleted rule's alert still goes out.
- Each alert is marked `silenced` when an active silence of its project mutes it now.
- A stored channel spec that does not parse is logged and skipped, never fatal.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import alert_rules, alerts, channels, notification_groups, silences
from app.domain.channels import ChannelSpec, parse_channel
from app.domain.notify_groups import AlertRecord, GroupState
from app.domain.silences import Silence, matchers_from_json, muting

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Channel:
    id: int
    project_id: int
    spec: ChannelSpec


def alert_record(row: Any, silenced: bool) -> AlertRecord:
    # By position, in ALERT_COLUMNS' order: attribute access on rows is slow in bulk.
    return AlertRecord(
        id=row[0],
        labels=row[3],
        firing=row[5] == "firing",
        fired_at=row[7],
        annotations=row[4],
        resolved_at=row[8],
        value=row[6],
        rule_id=row[2],
        fingerprint=row[9],
        silenced=silenced,
    )


ALERT_COLUMNS = (
    alerts.c.id,
    alerts.c.project_id,
    alerts.c.rule_id,
    alerts.c.labels,
    alerts.c.annotations,
    alerts.c.state,
    alerts.c.value,
    alerts.c.fired_at,
    alerts.c.resolved_at,
    alerts.c.fingerprint,
)


@dataclass(slots=True)
class Snapshot:
    """Everything a round decides from, read in one repeatable-read transaction."""

    channels: list[Channel]
    firing: dict[int, list[AlertRecord]]  # by channel id: the firing alerts routed there
    groups: dict[int, dict[str, GroupState]]  # by channel id and group key
    resolved: dict[int, AlertRecord]  # announced alerts that have resolved since, by id


async def _active_silences(connection: AsyncConnection, now: datetime) -> dict[int, list[Silence]]:
    active: dict[int, list[Silence]] = defaultdict(list)
    query = select(silences).where(silences.c.starts_at <= now, silences.c.ends_at > now)
    for row in await connection.execute(query):
        active[row.project_id].append(
            Silence(row.id, matchers_from_json(row.matchers), row.starts_at, row.ends_at)
        )
    return active


async def read_snapshot(connection: AsyncConnection, now: datetime) -> Snapshot:
    found: list[Channel] = []
    for row in await connection.execute(
        select(channels.c.id, channels.c.project_id, channels.c.spec).order_by(channels.c.id)
    ):
        try:
            found.append(Channel(row.id, row.project_id, parse_channel(row.spec)))
        except ValueError as error:  # stored specs always parse; never stop the round
            log.error("channel spec does not parse", extra={"channel": row.id, "error": str(error)})
    project_of = {channel.id: channel.project_id for channel in found}
    muted = await _active_silences(connection, now)

    def record(row: Any) -> AlertRecord:
        return alert_record(row, bool(muting(row.labels, muted.get(row.project_id, ()), now)))

    rule_channels = alert_rules.c.spec["channels"]
    firing: dict[int, list[AlertRecord]] = defaultdict(list)
    for row in await connection.execute(
        select(*ALERT_COLUMNS, rule_channels.label("channels"))
        .join(alert_rules, alert_rules.c.id == alerts.c.rule_id)
        .where(alerts.c.state == "firing", alerts.c.fired_at.is_not(None))
        .where(func.jsonb_typeof(rule_channels) == "array")
        .where(func.jsonb_array_length(rule_channels) > 0)
        .order_by(alerts.c.id)
    ):
        alert = record(row)
        for channel_id in dict.fromkeys(row.channels):
            # A rule may only send to its own project's channels.
            if isinstance(channel_id, int) and project_of.get(channel_id) == row.project_id:
                firing[channel_id].append(alert)
    groups: dict[int, dict[str, GroupState]] = defaultdict(dict)
    announced: set[int] = set()
    for row in await connection.execute(select(notification_groups)):
        groups[row.channel_id][row.group_key] = GroupState(
            key=row.group_key,
            labels=dict(row.group_labels),
            created_at=row.created_at,
            next_flush_at=row.next_flush_at,
            last_notified_at=row.last_notified_at,
            notified_firing=frozenset(row.notified_firing),
        )
        announced.update(row.notified_firing)
    resolved = {}
    if announced:
        query = select(*ALERT_COLUMNS).where(
            alerts.c.id.in_(sorted(announced)),
            alerts.c.state == "resolved",
            alerts.c.fired_at.is_not(None),
        )
        resolved = {row.id: record(row) for row in await connection.execute(query)}
    return Snapshot(found, dict(firing), dict(groups), resolved)
