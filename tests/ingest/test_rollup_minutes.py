"""The minute a flush's rollup and catalog rows are keyed by, memoised per flush
(`rollups.Minutes`), is the row's own minute: the same minute of the hour on other days,
months and years never shares an entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.ingest.rollups import Minutes

START = datetime(2025, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def test_each_timestamp_gets_its_own_minute() -> None:
    moments = [
        START + timedelta(days=days, minutes=minutes, microseconds=micros)
        for days in (0, 1, 31, 366)
        for minutes in (0, 1, 60, 61)
        for micros in (0, 1, 500_000)
    ]
    minute_of = Minutes()
    for moment in moments + moments[::-1]:
        assert minute_of(moment) == moment.replace(second=0, microsecond=0)
    assert len({minute_of(moment) for moment in moments}) == len(
        {moment.replace(second=0, microsecond=0) for moment in moments}
    )
