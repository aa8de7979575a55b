"""Channel bodies: what is accepted, why the rest is refused (naming the field), and how
secrets are masked on reads and kept on writes."""

from __future__ import annotations

import pytest

from app.domain.channels import (
    InvalidChannel,
    mask_url,
    masked,
    parse_channel,
    unmask,
)

SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


def body(**changes: object) -> dict[str, object]:
    return {"name": "oncall", "type": "webhook", "url": "https://hooks.example.com/a", **changes}


def test_a_minimal_channel_takes_the_defaults() -> None:
    spec = parse_channel(body())
    assert spec.document() == {
        "name": "oncall",
        "type": "webhook",
        "url": "https://hooks.example.com/a",
        "headers": {},
        "send_resolved": True,
        "max_alerts": 0,
    }
    assert spec.group_by is None and spec.group_wait is None


def test_a_full_channel_round_trips() -> None:
    document = body(
        headers={"Authorization": "Bearer s3cret", "X-Team": "ml"},
        group_by=["alertname", "service", "user.id"],
        group_wait="10s",
        group_interval="1m",
        repeat_interval="2h",
        send_resolved=False,
        max_alerts=20,
    )
    spec = parse_channel(document)
    assert spec.document() == document
    assert parse_channel(spec.document()) == spec
    assert parse_channel(body(group_by=["..."])).group_by_all
    assert parse_channel(body(group_wait=0)).group_wait == "0s"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"name": ""}, "name", "empty"),
        ({"name": "a\nb"}, "name", "control"),
        ({"type": "email"}, "type", "webhook"),
        ({"url": "ftp://example.com/x"}, "url", "http"),
        ({"url": "https:///nohost"}, "url", "host"),
        ({"url": "https://example.com/a b"}, "url", "spaces"),
        ({"url": "https://example.com/\x00"}, "url", "control"),
        ({"url": "https://example.com:99999/"}, "url", "Port out of range"),
        ({"url": "https://hooks.slack.com/***"}, "url", "masked"),
        ({"headers": {"Host": "evil"}}, "headers", "from the URL"),
        ({"headers": {"Transfer-Encoding": "chunked"}}, "headers", "hop-by-hop"),
        ({"headers": {"Connection": "close"}}, "headers", "hop-by-hop"),
        ({"headers": {"content-length": "1"}}, "headers", "body"),
        ({"headers": {"Idempotency-Key": "x"}}, "headers", "collector"),
        ({"headers": {"X-A": "1\r\nX-B: 2"}}, "headers", "control"),
        ({"headers": {"bad name": "1"}}, "headers", "header name"),
        ({"headers": {"X-A": "1", "x-a": "2"}}, "headers", "twice"),
        ({"headers": {"X-A": 5}}, "headers", "string"),
        ({"headers": {"X-A": "***"}}, "headers", "masked"),
        ({"group_by": ["...", "alertname"]}, "group_by", "combined"),
        ({"group_by": ["alert name"]}, "group_by", "label name"),
        ({"group_by": ["a", "a"]}, "group_by", "twice"),
        ({"group_wait": "soon"}, "group_wait", "duration"),
        ({"group_interval": "0s"}, "group_interval", "longer than 0s"),
        ({"repeat_interval": "60d"}, "repeat_interval", "31d"),
        ({"max_alerts": -1}, "max_alerts", "greater than or equal"),
        ({"send_resolved": "maybe"}, "send_resolved", "bool"),
        ({"extra": 1}, "extra", "unknown field"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(changes, field, words) -> None:
    with pytest.raises(InvalidChannel) as raised:
        parse_channel(body(**changes))
    message = str(raised.value)
    assert message.startswith(f"{field}") and words in message, message


def test_missing_fields_and_non_objects_are_refused() -> None:
    with pytest.raises(InvalidChannel, match="url: required"):
        parse_channel({"name": "x", "type": "slack"})
    with pytest.raises(InvalidChannel, match="JSON object"):
        parse_channel(["not", "an", "object"])


def test_alertmanager_channels_take_no_grouping_options() -> None:
    spec = parse_channel(body(type="alertmanager", url="http://alertmanager:9093"))
    assert spec.type == "alertmanager"
    for option, value in [("group_by", ["x"]), ("group_wait", "1s"), ("max_alerts", 5)]:
        with pytest.raises(InvalidChannel, match=f"^{option}: an alertmanager channel"):
            parse_channel(body(type="alertmanager", **{option: value}))
    with pytest.raises(InvalidChannel, match="^send_resolved:"):
        parse_channel(body(type="alertmanager", send_resolved=False))


def test_reads_mask_the_url_and_header_values() -> None:
    spec = parse_channel(
        body(type="slack", url=SLACK_URL, headers={"Authorization": "Bearer s3cret"})
    )
    shown = masked(spec.document())
    assert shown["url"] == "https://hooks.slack.com/***"
    assert shown["headers"] == {"Authorization": "***"}
    assert "s3cret" not in str(shown) and "XXXXSECRET" not in str(shown)
    assert mask_url("http://user:pw@am.internal:9093/path?q=1") == "http://am.internal:9093/***"


def test_a_put_with_masked_values_keeps_the_stored_secrets() -> None:
    stored = parse_channel(
        body(url=SLACK_URL, headers={"Authorization": "Bearer s3cret", "X-Team": "ml"})
    ).document()
    edited = {**masked(stored), "group_wait": "5s"}
    edited["headers"] = {"authorization": "***", "X-Team": "platform"}
    spec = parse_channel(unmask(edited, stored))
    assert spec.url == SLACK_URL
    assert spec.headers == {"authorization": "Bearer s3cret", "X-Team": "platform"}
    assert spec.group_wait == "5s"
    # A new URL or header value replaces the stored one.
    replaced = parse_channel(unmask({**edited, "url": "https://other.example/x"}, stored))
    assert replaced.url == "https://other.example/x"
    with pytest.raises(InvalidChannel, match="headers: 'X-New' is sent masked"):
        unmask({**edited, "headers": {"X-New": "***"}}, stored)
    # Left out: the header is removed.
    assert parse_channel(unmask({**edited, "headers": {}}, stored)).headers == {}
