"""Silence validation and matching, as Alertmanager matches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.domain.silences import (
    InvalidSilence,
    Matcher,
    Silence,
    matchers_from_json,
    muting,
    parse_silence,
    silence_state,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LABELS = {"alertname": "HighErrorRate", "service": "assistant-api", "severity": "critical"}


def silence(*matchers: Matcher, starts: float = -60, ends: float = 3600, id_: int = 1):
    return Silence(
        id_, tuple(matchers), NOW + timedelta(seconds=starts), NOW + timedelta(seconds=ends)
    )


@pytest.mark.parametrize(
    ("matcher", "matches"),
    [
        (Matcher(name="service", value="assistant-api"), True),
        (Matcher(name="service", value="assistant"), False),
        (Matcher(name="service", value="assistant-.*", is_regex=True), True),
        (Matcher(name="service", value="assistant", is_regex=True), False),  # anchored
        (Matcher(name="service", value="web|assistant-api", is_regex=True), True),
        (Matcher(name="service", value="assistant-api", is_equal=False), False),
        (Matcher(name="service", value="web", is_equal=False), True),
        (Matcher(name="service", value="web.*", is_regex=True, is_equal=False), True),
        (Matcher(name="team", value=""), True),  # a missing label reads as ""
        (Matcher(name="team", value="ml"), False),
    ],
)
def test_matchers(matcher: Matcher, matches: bool) -> None:
    assert matcher.matches(LABELS) is matches


def test_a_silence_mutes_only_while_active_and_when_every_matcher_matches() -> None:
    both = silence(
        Matcher(name="service", value="assistant-api"),
        Matcher(name="severity", value="critical"),
    )
    assert muting(LABELS, [both], NOW) == [1]
    assert muting({**LABELS, "severity": "info"}, [both], NOW) == []
    api = Matcher(name="service", value="assistant-api")
    assert muting(LABELS, [silence(api, starts=60)], NOW) == [], "not started yet"
    assert muting(LABELS, [silence(api, ends=0)], NOW) == [], "ended at now"


def test_silence_states() -> None:
    assert silence_state(NOW + timedelta(hours=1), NOW + timedelta(hours=2), NOW) == "pending"
    assert silence_state(NOW, NOW + timedelta(hours=2), NOW) == "active"
    assert silence_state(NOW - timedelta(hours=2), NOW, NOW) == "expired"


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "matchers": [{"name": "service", "value": "assistant-api"}],
        "ends_at": (NOW + timedelta(hours=2)).isoformat(),
        "comment": "deploy",
        "created_by": "ana",
    }
    base.update(overrides)
    return base


def test_parse_fills_starts_at_with_now() -> None:
    spec = parse_silence(body(), now=NOW)
    assert spec.starts_at == NOW and spec.ends_at == NOW + timedelta(hours=2)


def test_relative_times_are_accepted() -> None:
    spec = parse_silence(body(starts_at="now", ends_at="now+30m"))
    assert spec.ends_at - spec.starts_at == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"matchers": []}, "matchers"),
        ({"matchers": [{"name": "service", "value": ".*", "is_regex": True}]}, "matchers"),
        ({"matchers": [{"name": "service", "value": "x", "is_equal": False}]}, "matchers"),
        ({"matchers": [{"name": "service", "value": "(", "is_regex": True}]}, "matchers.0"),
        ({"matchers": [{"name": "", "value": "x"}]}, "matchers.0.name"),
        ({"matchers": [{"name": "a", "value": "x", "op": "="}]}, "matchers.0.op"),
        ({"ends_at": "tomorrow"}, "ends_at"),
        ({"ends_at": (NOW - timedelta(hours=1)).isoformat()}, "ends_at"),
        ({"starts_at": (NOW + timedelta(hours=3)).isoformat()}, "ends_at"),
        ({"ends_at": (NOW + timedelta(days=400)).isoformat()}, "ends_at"),
        ({"comment": "x" * 5000}, "comment"),
        ({"reason": "x"}, "reason"),
    ],
)
def test_bad_silences_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSilence) as raised:
        parse_silence(body(**overrides), now=NOW)
    assert str(raised.value).startswith(field), str(raised.value)


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidSilence):
        parse_silence("service=api")


def test_stored_matchers_read_back() -> None:
    stored = [{"name": "service", "value": "a.*", "is_regex": True, "is_equal": True}]
    (matcher,) = matchers_from_json(stored)
    assert matcher.matches({"service": "api"})


def test_regex_matching_takes_linear_time() -> None:
    # (a+)+b backtracks exponentially in Python's re; RE2 answers at once.
    matcher = Matcher(name="q", value="(a+)+b", is_regex=True)
    assert matcher.matches({"q": "a" * 10000}) is False
    assert matcher.matches({"q": "a" * 10000 + "b"}) is True


def test_regex_syntax_is_go_like() -> None:
    with pytest.raises(InvalidSilence, match="RE2"):
        parse_silence(
            body(matchers=[{"name": "service", "value": "(?<=a)b", "is_regex": True}]), now=NOW
        )
