"""Silences: label matchers with a time range, matched as Alertmanager matches them.

A matcher compares one label (a missing label reads as the empty string) for equality or
against a regular expression anchored at both ends, and may be negated (`is_equal:
false`). Regular expressions are RE2's, as Alertmanager's (Go's regexp) are: the same
syntax, and matching in linear time, so no pattern can stall evaluation or listing.
A silence mutes an alert when every matcher matches and `starts_at <= now < ends_at`.
As in Alertmanager, a silence needs at least one matcher that does not match the empty
string, so that no silence can mute every alert by accident.

`parse_silence` validates a request body and raises `InvalidSilence` naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import re2
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.domain.alert_rules import describe
from app.domain.times import parse_time

MAX_MATCHERS = 32
MAX_PATTERN_CHARS = 1024
MAX_SILENCE_S = 366 * 86400.0
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is answered with a 400, not logged


class InvalidSilence(ValueError):
    """A silence body that cannot be stored; the message names the field and the fix."""


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re2._Regexp:
    return re2.compile(f"^(?:{pattern})$", options=_RE2_OPTIONS)


class Matcher(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value or len(value) > 256:
            raise ValueError("must be a label name of 1 to 256 characters")
        return value

    @field_validator("value")
    @classmethod
    def _value(cls, value: str) -> str:
        if len(value) > MAX_PATTERN_CHARS:
            raise ValueError(f"must be at most {MAX_PATTERN_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _regex_compiles(self) -> Matcher:
        if self.is_regex:
            try:
                _compiled(self.value)
            except re2.error as error:
                reason = error.args[0] if error.args else "invalid"
                if isinstance(reason, bytes):
                    reason = reason.decode(errors="replace")
                raise ValueError(
                    f"value {self.value!r} is not a regular expression (RE2 syntax): {reason}"
                ) from None
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.is_regex:
            found = _compiled(self.value).match(actual) is not None
        else:
            found = actual == self.value
        return found == self.is_equal


class SilenceSpec(BaseModel):
    """A validated silence body. Times are UTC; `starts_at` defaults to now."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = None
    matchers: list[Matcher]
    starts_at: datetime | None = None
    ends_at: datetime
    comment: str = ""
    created_by: str = ""

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _time(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or isinstance(value, datetime):
            return value
        if isinstance(value, str | int | float):
            try:
                # One `now` for both ends, so `now` .. `now+30m` is exactly 30 minutes.
                return parse_time(value, now=(info.context or {}).get("now"))
            except ValueError as error:
                raise ValueError(str(error)) from None
        raise ValueError("must be a time: RFC 3339, Unix seconds or relative like now+2h")

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[Matcher]) -> list[Matcher]:
        if not value:
            raise ValueError("at least one matcher is needed")
        if len(value) > MAX_MATCHERS:
            raise ValueError(f"at most {MAX_MATCHERS} matchers")
        if all(matcher.matches({}) for matcher in value):
            raise ValueError(
                "at least one matcher must not match the empty string, or the silence would "
                "mute every alert"
            )
        return value

    @field_validator("comment", "created_by")
    @classmethod
    def _text(cls, value: str) -> str:
        if len(value) > 4096:
            raise ValueError("must be at most 4096 characters")
        return value

    @field_validator("name")
    @classmethod
    def _silence_name(cls, value: str | None) -> str | None:
        if value is not None and not 1 <= len(value) <= 200:
            raise ValueError("must be 1 to 200 characters")
        return value


def parse_silence(body: Any, *, now: datetime | None = None) -> SilenceSpec:
    """A request body → SilenceSpec (starts_at filled), or InvalidSilence naming the field."""
    if not isinstance(body, dict):
        raise InvalidSilence("the body must be a JSON object describing the silence")
    now = now or datetime.now(UTC)
    try:
        spec = SilenceSpec.model_validate(body, context={"now": now})
    except ValidationError as error:
        raise InvalidSilence(describe(error)) from None
    starts_at = spec.starts_at or now
    if spec.ends_at <= now:
        raise InvalidSilence("ends_at: must be in the future")
    if spec.ends_at <= starts_at:
        raise InvalidSilence("ends_at: must be after starts_at")
    if spec.ends_at - starts_at > timedelta(seconds=MAX_SILENCE_S):
        raise InvalidSilence("ends_at: a silence lasts at most 366 days")
    return spec.model_copy(update={"starts_at": starts_at})


@dataclass(frozen=True, slots=True)
class Silence:
    """A stored silence, as matching needs it."""

    id: int
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        return self.active(now) and all(matcher.matches(labels) for matcher in self.matchers)


def silence_state(starts_at: datetime, ends_at: datetime, now: datetime) -> str:
    """`pending` (not started), `active`, or `expired` — Alertmanager's names."""
    if now < starts_at:
        return "pending"
    return "active" if now < ends_at else "expired"


def muting(labels: Mapping[str, str], silences: Iterable[Silence], now: datetime) -> list[int]:
    """Ids of the silences that mute an alert with `labels` at `now` (empty: not silenced)."""
    return [silence.id for silence in silences if silence.mutes(labels, now)]


def matchers_from_json(document: Iterable[Mapping[str, Any]]) -> tuple[Matcher, ...]:
    """Matchers as stored (the `matchers` jsonb column)."""
    return tuple(Matcher.model_validate(item) for item in document)
