"""The bodies the collector POSTs to receivers, one builder per channel type.

Pure functions; golden files in tests/fixtures/notify/ pin each format.

- `webhook_payload`: Alertmanager's webhook JSON, version "4" (notify/webhook/webhook.go
  Message over template.Data, Alertmanager 0.25-0.28): receiver (the channel's name),
  status, alerts [{status, labels, annotations, startsAt, endsAt, generatorURL,
  fingerprint}], groupLabels, commonLabels, commonAnnotations, externalURL, version,
  groupKey, truncatedAlerts. A firing alert's endsAt is Go's zero time
  "0001-01-01T00:00:00Z", as Alertmanager writes it; `max_alerts` keeps the first N
  alerts and counts the rest in truncatedAlerts; common labels and annotations are those
  every sent alert shares (template.go Data).
- `alertmanager_payload`: the list Alertmanager's `POST /api/v2/alerts` takes, as
  Prometheus sends it (cmd/prometheus sendAlerts): startsAt = when the alert fired,
  endsAt = resolved_at once resolved, else now + valid_for (4 × max(evaluation interval,
  resend delay), Prometheus' rule). Label and annotation names that Alertmanager would
  refuse are sent with every other character as `_` ([a-zA-Z_][a-zA-Z0-9_]*); empty
  label values are left out (Prometheus treats them as absent).
- `slack_payload`: a Slack incoming-webhook message: one attachment coloured by the
  highest firing severity (green once resolved), the title of Alertmanager's default
  Slack template, and per alert its name, severity, value, summary, description, a
  runbook link and a link to its rule; at most `SLACK_MAX_ALERTS` alerts (or max_alerts).

Times are RFC 3339 in UTC with Go's trimmed fraction, as Alertmanager writes them.
`generatorURL` is `{external_url}/api/v1/alert-rules/{rule_id}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.domain.alert_state import fingerprint
from app.domain.notify_groups import AlertRecord
from app.domain.templating import format_value

WEBHOOK_VERSION = "4"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
SLACK_MAX_ALERTS = 50
SLACK_MAX_FIELD_CHARS = 1000
# Alertmanager's classic label name syntax, which every version accepts.
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_INVALID_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")
SEVERITY_COLOURS = {
    "critical": "#d63232",
    "page": "#d63232",
    "error": "#d63232",
    "warning": "#daa038",
    "ticket": "#daa038",
    "info": "#439fe0",
}
SEVERITY_RANK = ("critical", "page", "error", "warning", "ticket", "info")
OTHER_COLOUR = "#808080"
RESOLVED_COLOUR = "#2eb886"
PROBE_ALERT_NAME = "TelemetryCollectorTest"


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a notification says about its group and channel besides the alerts."""

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    external_url: str
    max_alerts: int = 0


def go_time(moment: datetime) -> str:
    """RFC 3339 UTC as Go's time.Time marshals it: `2026-11-30T08:56:09.5Z`."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def generator_url(external_url: str, rule_id: int | None) -> str:
    base = external_url.rstrip("/")
    return f"{base}/api/v1/alert-rules/{rule_id}" if rule_id is not None else f"{base}/"


def _status(alert: AlertRecord) -> str:
    return "firing" if alert.firing else "resolved"


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {name: value for name, value in common.items() if other.get(name) == value}
    return dict(sorted(common.items()))


def truncate(alerts: Sequence[AlertRecord], limit: int) -> tuple[list[AlertRecord], int]:
    """The first `limit` alerts (0: all) and how many were left out."""
    if limit and len(alerts) > limit:
        return list(alerts[:limit]), len(alerts) - limit
    return list(alerts), 0


def webhook_payload(envelope: Envelope, alerts: Sequence[AlertRecord]) -> dict[str, Any]:
    """The Alertmanager webhook body (version 4) for `alerts`, already sorted."""
    sent, truncated = truncate(alerts, envelope.max_alerts)
    external = envelope.external_url.rstrip("/")
    return {
        "receiver": envelope.receiver,
        "status": "firing" if any(alert.firing for alert in sent) else "resolved",
        "alerts": [
            {
                "status": _status(alert),
                "labels": dict(sorted(alert.labels.items())),
                "annotations": dict(sorted(alert.annotations.items())),
                "startsAt": go_time(alert.fired_at),
                "endsAt": (
                    go_time(alert.resolved_at)
                    if not alert.firing and alert.resolved_at
                    else GO_ZERO_TIME
                ),
                "generatorURL": generator_url(external, alert.rule_id),
                "fingerprint": alert.fingerprint,
            }
            for alert in sent
        ],
        "groupLabels": dict(sorted(envelope.group_labels.items())),
        "commonLabels": _common([alert.labels for alert in sent]),
        "commonAnnotations": _common([alert.annotations for alert in sent]),
        "externalURL": external,
        "version": WEBHOOK_VERSION,
        "groupKey": envelope.group_key,
        "truncatedAlerts": truncated,
    }


def alertmanager_name(name: str) -> str:
    """A label or annotation name Alertmanager accepts: `user.id` → `user_id`."""
    if _LABEL_NAME.match(name):
        return name
    cleaned = _INVALID_LABEL_CHAR.sub("_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else "_" + cleaned


def _sanitized(values: Mapping[str, str], *, drop_empty: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    # Valid names first, so `user_id` keeps its value when `user.id` would also map to it.
    for name in sorted(values, key=lambda item: (not _LABEL_NAME.match(item), item)):
        value = values[name]
        if drop_empty and value == "":
            continue
        out.setdefault(alertmanager_name(name), value)
    return dict(sorted(out.items()))


def alertmanager_payload(
    alerts: Sequence[AlertRecord], *, now: datetime, valid_for_s: float, external_url: str
) -> list[dict[str, Any]]:
    """The body of Alertmanager's `POST /api/v2/alerts` for `alerts`."""
    valid_until = now + timedelta(seconds=valid_for_s)
    body = []
    for alert in alerts:
        ends_at = alert.resolved_at if not alert.firing and alert.resolved_at else valid_until
        body.append(
            {
                "labels": _sanitized(alert.labels, drop_empty=True),
                "annotations": _sanitized(alert.annotations, drop_empty=False),
                "startsAt": go_time(alert.fired_at),
                "endsAt": go_time(max(ends_at, alert.fired_at)),
                "generatorURL": generator_url(external_url, alert.rule_id),
            }
        )
    return body


def _slack_escape(text: str, limit: int = SLACK_MAX_FIELD_CHARS) -> str:
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str, text: str) -> str:
    safe = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")
    return f"<{safe}|{_slack_escape(text)}>"


def slack_colour(alerts: Sequence[AlertRecord]) -> str:
    severities = {alert.labels.get("severity", "") for alert in alerts if alert.firing}
    if not severities:
        return RESOLVED_COLOUR
    for severity in SEVERITY_RANK:
        if severity in severities:
            return SEVERITY_COLOURS[severity]
    return OTHER_COLOUR


def slack_title(envelope: Envelope, alerts: Sequence[AlertRecord]) -> str:
    """Alertmanager's slack.default.title: `[FIRING:2] <group label values> (<common>)`."""
    firing = sum(1 for alert in alerts if alert.firing)
    status = f"FIRING:{firing}" if firing else "RESOLVED"
    group_values = [envelope.group_labels[name] for name in sorted(envelope.group_labels)]
    common = _common([alert.labels for alert in alerts])
    extra = [value for name, value in common.items() if name not in envelope.group_labels]
    title = f"[{status}] {' '.join(group_values)}".rstrip()
    return f"{title} ({' '.join(extra)})" if extra else title


def _slack_alert(alert: AlertRecord, external_url: str) -> str:
    name = alert.labels.get("alertname", "alert")
    head = f"*{_slack_escape(name)}*"
    if alert.labels.get("severity"):
        head += f" · {_slack_escape(alert.labels['severity'])}"
    head += " · firing" if alert.firing else " · resolved"
    if alert.value is not None:
        head += f" · value {_slack_escape(format_value(alert.value))}"
    lines = [head]
    for key in ("summary", "description"):
        if alert.annotations.get(key):
            lines.append(_slack_escape(alert.annotations[key]))
    shown = {
        name: value
        for name, value in sorted(alert.labels.items())
        if name not in ("alertname", "severity") and value
    }
    if shown:
        lines.append(_slack_escape(", ".join(f"{name}={value}" for name, value in shown.items())))
    links = []
    runbook = alert.annotations.get("runbook_url", "")
    if runbook.startswith(("http://", "https://")):
        links.append(_slack_link(runbook, "Runbook"))
    links.append(_slack_link(generator_url(external_url, alert.rule_id), "Rule"))
    lines.append(" · ".join(links))
    return "\n".join(lines)


def slack_payload(envelope: Envelope, alerts: Sequence[AlertRecord]) -> dict[str, Any]:
    """A Slack incoming-webhook message for `alerts`, already sorted."""
    limit = min(envelope.max_alerts or SLACK_MAX_ALERTS, SLACK_MAX_ALERTS)
    shown, left_out = truncate(alerts, limit)
    external = envelope.external_url.rstrip("/")
    title = slack_title(envelope, alerts)
    blocks = [_slack_alert(alert, external) for alert in shown]
    if left_out:
        blocks.append(f"…and {left_out} more")
    return {
        "text": _slack_escape(title),
        "attachments": [
            {
                "color": slack_colour(alerts),
                "title": title,
                "title_link": f"{external}/api/v1/alerts",
                "text": "\n\n".join(blocks),
                "fallback": title,
                "footer": envelope.receiver,
                "mrkdwn_in": ["text"],
            }
        ],
    }


def build_payload(
    channel_type: str,
    envelope: Envelope,
    alerts: Sequence[AlertRecord],
    *,
    now: datetime,
    valid_for_s: float,
) -> Any:
    """The body for a channel of `channel_type` (webhook, slack, alertmanager)."""
    if channel_type == "webhook":
        return webhook_payload(envelope, alerts)
    if channel_type == "slack":
        return slack_payload(envelope, alerts)
    if channel_type == "alertmanager":
        return alertmanager_payload(
            alerts, now=now, valid_for_s=valid_for_s, external_url=envelope.external_url
        )
    raise ValueError(f"unknown channel type {channel_type!r}")


def probe_alert(channel_name: str, channel_type: str, now: datetime) -> AlertRecord:
    """The alert a channel test sends. To an Alertmanager it is sent already resolved,
    so the test reaches it without paging anyone through its routes."""
    labels = {"alertname": PROBE_ALERT_NAME, "severity": "info", "channel": channel_name}
    resolved = channel_type == "alertmanager"
    return AlertRecord(
        id=0,
        labels=labels,
        firing=not resolved,
        fired_at=now,
        resolved_at=now if resolved else None,
        annotations={
            "summary": f"A test notification to channel {channel_name!r}; nothing is wrong."
        },
        fingerprint=fingerprint(labels),
    )
