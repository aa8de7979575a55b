"""Times and durations from users: every form out of range is a ValueError saying so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.domain.durations import parse_duration_seconds
from app.domain.times import EARLIEST, LATEST, parse_time

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",  # a valid string whose UTC form is before year 1
        "9999-12-31T23:59:59-01:00",  # ... after year 9999
        "1969-12-31T23:59:59Z",
        "3000-01-01T00:00:00Z",
        "now-99999999999d",
        "now+9999999w",
        "now-" + "9" * 400 + "d",
        "now+" + "9" * 30 + "ms",
        "-1",
        "1e400",
        "nan",
        "infinity",
        -5,
        10**20,
        float("inf"),
    ],
)
def test_out_of_range_times_are_refused(value: str | float) -> None:
    with pytest.raises(ValueError, match="out of range|too long"):
        parse_time(value, now=NOW)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1970-01-01T00:00:00Z", EARLIEST),
        ("2999-12-31T23:59:59.999999Z", datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("0", EARLIEST),
        ("now-1h30m", datetime(2026, 11, 23, 8, 30, tzinfo=UTC)),
        ("now + 1d", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
        ("2026-11-23T11:00:00+01:00", NOW),
    ],
)
def test_times_in_range_are_read(value: str, expected: datetime) -> None:
    assert parse_time(value, now=NOW) == expected


def test_the_range_ends_before_its_upper_bound() -> None:
    assert LATEST == datetime(3000, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="out of range"):
        parse_time(LATEST.timestamp(), now=NOW)


def test_messages_show_a_bounded_part_of_the_input() -> None:
    with pytest.raises(ValueError) as raised:
        parse_time("now-" + "9" * 5000, now=NOW)
    assert len(str(raised.value)) < 300


@pytest.mark.parametrize("text", ["9" * 400 + "s", "1" * 310 + "w", "9" * 60_000, "1s" * 40])
def test_durations_longer_than_anyone_writes_are_refused(text: str) -> None:
    # 60,000 digits without a unit once took minutes of regex backtracking on the event loop.
    with pytest.raises(ValueError, match="too long"):
        parse_duration_seconds(text)


def test_durations_as_people_write_them() -> None:
    assert parse_duration_seconds("1w2d3h4m5s6ms") == 604800 + 2 * 86400 + 3 * 3600 + 245.006
    assert parse_duration_seconds(" 1H30M ") == 5400.0
