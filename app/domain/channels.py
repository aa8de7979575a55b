"""Notification channels as validated documents, and how their secrets are shown.

A channel is where an alert rule's notifications go:
- `webhook`: the Alertmanager webhook JSON (version "4") POSTed to `url`;
- `slack`: a Slack incoming-webhook message POSTed to `url`;
- `alertmanager`: the alerts POSTed to the Alertmanager at `url` (`/api/v2/alerts`).

Contract:
- `parse_channel(body) -> ChannelSpec`, or `InvalidChannel` whose message names the
  field and what to send instead. `ChannelSpec.document()` is what `channels.spec`
  stores (name and type are also columns), so a stored channel always parses again.
- `url` and header values are secrets (tokens live in them): `masked(document)` is what
  reads show — the URL reduced to `scheme://host/***`, header values `***` — and
  `unmask(body, stored)` puts the stored values back where a PUT sends the masked ones,
  so a client can read, edit and write back a channel without knowing its secrets.
- Grouping (`group_by`, `group_wait`, `group_interval`, `repeat_interval`,
  `send_resolved`) follows Alertmanager's route options; unset durations take the
  collector's settings. `alertmanager` channels take none of them: the receiving
  Alertmanager groups, and the collector sends it every change (see notify_groups).
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.domain.alert_rules import LABEL_NAME, describe
from app.domain.durations import duration_text

CHANNEL_TYPES = ("webhook", "slack", "alertmanager")
MASK = "***"
GROUP_BY_ALL = "..."
DEFAULT_GROUP_BY = ("alertname",)
MAX_NAME_CHARS = 200
MAX_URL_CHARS = 2048
MAX_HEADERS = 32
MAX_HEADER_VALUE_CHARS = 4096
MAX_GROUP_BY = 32
MAX_DURATION_S = 31 * 86400.0
MAX_ALERTS_LIMIT = 10000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the HTTP client or the collector sets.
REFUSED_HEADERS = {
    "connection": "a hop-by-hop header",
    "keep-alive": "a hop-by-hop header",
    "proxy-authenticate": "a hop-by-hop header",
    "proxy-authorization": "a hop-by-hop header",
    "proxy-connection": "a hop-by-hop header",
    "te": "a hop-by-hop header",
    "trailer": "a hop-by-hop header",
    "transfer-encoding": "a hop-by-hop header",
    "upgrade": "a hop-by-hop header",
    "host": "set from the URL",
    "content-length": "set from the body",
    "content-type": "always application/json",
    "idempotency-key": "set by the collector (the notification's id)",
    "x-telemetry-notification-id": "set by the collector (the notification's id)",
}
# Options that only grouping channels take (an Alertmanager groups on its own).
GROUPING_FIELDS = ("group_by", "group_wait", "group_interval", "repeat_interval", "max_alerts")


class InvalidChannel(ValueError):
    """A channel body that cannot be stored; the message names the field and the fix."""


def check_url(value: str) -> str:
    """An http(s) URL with a host, without spaces or control characters; else ValueError."""
    if len(value) > MAX_URL_CHARS:
        raise ValueError(f"must be at most {MAX_URL_CHARS} characters")
    if _CONTROL.search(value) or " " in value:
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as error:
        raise ValueError(f"is not a URL: {error}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("must name a host, e.g. https://hooks.example.com/alerts")
    return value


class ChannelSpec(BaseModel):
    """A validated channel. Durations keep the text sent; unset ones follow the settings."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str
    type: Literal["webhook", "slack", "alertmanager"]
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    group_by: list[str] | None = None
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None
    send_resolved: bool = True
    max_alerts: int = Field(0, ge=0, le=MAX_ALERTS_LIMIT)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_NAME_CHARS:
            raise ValueError(f"must be at most {MAX_NAME_CHARS} characters")
        if _CONTROL.search(value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        check_url(value)
        if value.endswith("/" + MASK):
            raise ValueError(
                "is the masked form a read shows; send the full URL (or, in a PUT of an "
                "existing channel, the masked form exactly as read to keep it)"
            )
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_HEADERS:
            raise ValueError(f"at most {MAX_HEADERS} headers")
        seen: set[str] = set()
        for name, text in value.items():
            lowered = name.lower()
            if not _TOKEN.match(name):
                raise ValueError(f"{name!r} is not a header name (letters, digits and -)")
            if lowered in REFUSED_HEADERS:
                raise ValueError(f"{name!r} cannot be set: {REFUSED_HEADERS[lowered]}")
            if lowered in seen:
                raise ValueError(f"{name!r} is named twice (header names ignore case)")
            seen.add(lowered)
            if _CONTROL.search(text.replace("\t", " ")):
                raise ValueError(f"the value of {name!r} must not contain control characters")
            if len(text) > MAX_HEADER_VALUE_CHARS:
                raise ValueError(f"the value of {name!r} is longer than 4096 characters")
            if text == MASK:
                raise ValueError(
                    f"the value of {name!r} is the masked form a read shows; send the value"
                )
        return value

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if GROUP_BY_ALL in value:
            if len(value) > 1:
                raise ValueError('"..." (group by every label) cannot be combined with names')
            return value
        if len(value) > MAX_GROUP_BY:
            raise ValueError(f"at most {MAX_GROUP_BY} label names")
        if len(set(value)) != len(value):
            raise ValueError("names a label twice")
        for name in value:
            if not LABEL_NAME.match(name) or len(name) > 256:
                raise ValueError(
                    f"{name!r} is not a label name: start with a letter or _, then letters, "
                    'digits, _, . or -; or send ["..."] to group by every label'
                )
        return value

    @field_validator("group_wait", mode="before")
    @classmethod
    def _wait(cls, value: Any) -> str | None:
        return None if value is None else duration_text(value, max_s=MAX_DURATION_S)

    @field_validator("group_interval", "repeat_interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> str | None:
        if value is None:
            return None
        return duration_text(value, allow_zero=False, max_s=MAX_DURATION_S)

    @model_validator(mode="after")
    def _fits_type(self) -> ChannelSpec:
        if self.type != "alertmanager":
            return self
        for field in GROUPING_FIELDS:
            if field in self.model_fields_set and getattr(self, field) not in (None, 0):
                raise ValueError(
                    f"{field}: an alertmanager channel takes no grouping options; the "
                    "receiving Alertmanager groups, and every change is sent to it at once"
                )
        if not self.send_resolved:
            raise ValueError(
                "send_resolved: an alertmanager channel always sends resolved alerts (with "
                "endsAt), or they would stay firing there until they time out"
            )
        return self

    @property
    def group_by_all(self) -> bool:
        return self.group_by == [GROUP_BY_ALL]

    def document(self) -> dict[str, Any]:
        """The stored and returned form (JSON-ready, unset options left out)."""
        return self.model_dump(mode="json", exclude_none=True)


def parse_channel(body: Any) -> ChannelSpec:
    """A request body (dict) → ChannelSpec, or InvalidChannel naming the field and why."""
    if not isinstance(body, dict):
        raise InvalidChannel("the body must be a JSON object describing the channel")
    try:
        return ChannelSpec.model_validate(body)
    except ValidationError as error:
        raise InvalidChannel(describe(error)) from None


def mask_url(url: str) -> str:
    """`https://user:token@hooks.slack.com/services/T/B/X` → `https://hooks.slack.com/***`."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}/{MASK}"


def masked(document: dict[str, Any]) -> dict[str, Any]:
    """A stored channel document with its secrets hidden, as reads return it."""
    shown = dict(document)
    shown["url"] = mask_url(document["url"])
    shown["headers"] = {name: MASK for name in document.get("headers", {})}
    return shown


def unmask(body: Any, stored: dict[str, Any]) -> Any:
    """A PUT body with masked values replaced by the stored ones they stand for.

    The URL is kept when the body sends exactly its masked form; a header is kept when
    its value is `***` and the stored channel has a header of that name (any case).
    """
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if body.get("url") == mask_url(stored["url"]):
        body["url"] = stored["url"]
    headers = body.get("headers")
    if isinstance(headers, dict):
        stored_headers = {name.lower(): value for name, value in stored.get("headers", {}).items()}
        restored = {}
        for name, value in headers.items():
            if value == MASK:
                if not isinstance(name, str) or name.lower() not in stored_headers:
                    raise InvalidChannel(
                        f"headers: {name!r} is sent masked ({MASK}) but the channel has no "
                        "such header; send its value"
                    )
                value = stored_headers[name.lower()]
            restored[name] = value
        body["headers"] = restored
    return body
