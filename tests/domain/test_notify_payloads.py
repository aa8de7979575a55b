"""Receiver payloads pinned by golden files: Alertmanager's webhook JSON (version 4), its
/api/v2/alerts body, and the Slack message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notify_kit import golden

from app.domain.alert_state import fingerprint
from app.domain.notify_groups import AlertRecord, group_key, sort_alerts
from app.domain.notify_payloads import (
    GO_ZERO_TIME,
    Envelope,
    alertmanager_name,
    alertmanager_payload,
    build_payload,
    go_time,
    probe_alert,
    slack_payload,
    webhook_payload,
)

FIRED = datetime(2026, 11, 30, 12, 0, 5, 250000, tzinfo=UTC)
RESOLVED = datetime(2026, 11, 30, 12, 20, tzinfo=UTC)
NOW = datetime(2026, 11, 30, 12, 21, tzinfo=UTC)
GROUP = {"alertname": "HighErrorRate"}
ENVELOPE = Envelope("oncall", group_key(GROUP), GROUP, "https://telemetry.example.com/")


def alert(alert_id: int, model: str, *, resolved: bool = False, **extra: str) -> AlertRecord:
    labels = {
        "alertname": "HighErrorRate",
        "severity": "critical",
        "service": "checkout-agent",
        "model": model,
        **extra,
    }
    return AlertRecord(
        id=alert_id,
        labels=labels,
        firing=not resolved,
        fired_at=FIRED + timedelta(seconds=alert_id),
        resolved_at=RESOLVED if resolved else None,
        annotations={
            "summary": f"Error rate of {model} is {alert_id * 10}%",
            "runbook_url": "https://runbooks.example.com/high-error-rate",
        },
        value=alert_id / 10,
        rule_id=7,
        fingerprint=fingerprint(labels),
    )


ALERTS = sort_alerts([alert(2, "gpt-4o-mini"), alert(1, "gpt-4o", **{"user.id": "u-42"})])


def test_times_are_written_as_go_writes_them() -> None:
    assert go_time(FIRED) == "2026-11-30T12:00:05.25Z"
    assert go_time(RESOLVED) == "2026-11-30T12:20:00Z"
    assert GO_ZERO_TIME == "0001-01-01T00:00:00Z"


def test_webhook_firing_payload_is_alertmanagers_version_4() -> None:
    payload = webhook_payload(ENVELOPE, ALERTS)
    golden("webhook_firing.json", payload)
    assert list(payload) == [
        "receiver",
        "status",
        "alerts",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "version",
        "groupKey",
        "truncatedAlerts",
    ]
    assert payload["groupKey"] == '{}:{alertname="HighErrorRate"}'
    assert payload["commonLabels"] == {
        "alertname": "HighErrorRate",
        "service": "checkout-agent",
        "severity": "critical",
    }


def test_webhook_resolved_payload_and_truncation() -> None:
    done = [alert(1, "gpt-4o", resolved=True), alert(2, "gpt-4o-mini", resolved=True)]
    golden("webhook_resolved.json", webhook_payload(ENVELOPE, sort_alerts(done)))
    mixed = webhook_payload(
        Envelope("oncall", ENVELOPE.group_key, GROUP, "http://x", max_alerts=1),
        [alert(1, "a"), alert(2, "b", resolved=True), alert(3, "c")],
    )
    assert mixed["truncatedAlerts"] == 2 and len(mixed["alerts"]) == 1
    assert mixed["status"] == "firing"
    assert mixed["commonAnnotations"] == {
        "runbook_url": "https://runbooks.example.com/high-error-rate",
        "summary": "Error rate of a is 10%",
    }


def test_alertmanager_payload_is_what_prometheus_posts() -> None:
    both = sort_alerts([alert(1, "gpt-4o", **{"user.id": "u-42"}), alert(2, "", resolved=True)])
    payload = alertmanager_payload(
        both, now=NOW, valid_for_s=240, external_url="https://telemetry.example.com"
    )
    golden("alertmanager.json", payload)
    resolved, firing = payload  # fewer labels sort first, as in Alertmanager
    assert firing["endsAt"] == "2026-11-30T12:25:00Z"  # now + 4 × max(eval, resend)
    assert "user_id" in firing["labels"] and "model" not in resolved["labels"]


def test_alertmanager_label_names_are_sanitised() -> None:
    assert alertmanager_name("service") == "service"
    assert alertmanager_name("gen_ai.request.model") == "gen_ai_request_model"
    assert alertmanager_name("x-team") == "x_team"
    assert alertmanager_name("9lives") == "_9lives"
    payload = alertmanager_payload(
        [
            AlertRecord(
                1, {"user.id": "dotted", "user_id": "plain", "a": "1"}, True, FIRED, rule_id=1
            )
        ],
        now=NOW,
        valid_for_s=60,
        external_url="http://x",
    )
    assert payload[0]["labels"] == {"a": "1", "user_id": "plain"}


def test_slack_messages() -> None:
    golden("slack_firing.json", slack_payload(ENVELOPE, ALERTS))
    done = [alert(1, "gpt-4o", resolved=True)]
    resolved = slack_payload(ENVELOPE, done)
    golden("slack_resolved.json", resolved)
    assert resolved["attachments"][0]["color"] == "#2eb886"
    warning = AlertRecord(9, {"alertname": "Cost", "severity": "warning"}, True, FIRED)
    assert slack_payload(ENVELOPE, [warning])["attachments"][0]["color"] == "#daa038"
    hostile = AlertRecord(
        9,
        {"alertname": "<!channel> & co", "severity": "info"},
        True,
        FIRED,
        annotations={"summary": "x" * 5000, "runbook_url": "https://r.example/a|b>c"},
    )
    text = slack_payload(ENVELOPE, [hostile])["attachments"][0]["text"]
    assert "&lt;!channel&gt; &amp; co" in text and "<!channel>" not in text
    assert "<https://r.example/a%7Cb%3Ec|Runbook>" in text
    assert len(text) < 2000


def test_slack_caps_the_alerts_it_lists() -> None:
    many = [alert(index, f"m{index}") for index in range(1, 61)]
    text = slack_payload(ENVELOPE, many)["attachments"][0]["text"]
    assert text.endswith("…and 10 more")
    assert slack_payload(ENVELOPE, many)["text"].startswith("[FIRING:60] HighErrorRate")


def test_the_probe_alert() -> None:
    probe = probe_alert("oncall", "webhook", NOW)
    payload = build_payload("webhook", ENVELOPE, [probe], now=NOW, valid_for_s=60)
    assert payload["alerts"][0]["labels"]["alertname"] == "TelemetryCollectorTest"
    assert payload["status"] == "firing"
    quiet = probe_alert("am", "alertmanager", NOW)
    body = build_payload("alertmanager", ENVELOPE, [quiet], now=NOW, valid_for_s=60)
    assert body[0]["endsAt"] == body[0]["startsAt"]  # already resolved: nobody is paged
