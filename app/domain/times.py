"""Times in query parameters and native bodies: RFC 3339, Unix seconds, or `now-1h`.

Every accepted time lies in TIME_RANGE (the Unix epoch to the year 3000), whatever form it
was written in: nothing the collector stores is older than the epoch (OTLP times are
unsigned nanoseconds), and beyond the range arithmetic on `datetime` overflows.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from app.domain.durations import parse_duration_seconds

_RELATIVE = re.compile(r"^now(?:\s*([+-])\s*(.+))?$", re.IGNORECASE)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
_RANGE_S = (LATEST - EARLIEST).total_seconds()
_FORMS = "use RFC 3339 (2026-11-23T10:00:00Z), Unix seconds, or relative like now-1h"


def parse_time(value: str | float | int, *, now: datetime | None = None) -> datetime:
    """Parse a time; raises ValueError naming the accepted forms or the accepted range."""
    now = now or datetime.now(UTC)
    if isinstance(value, bool):
        raise ValueError("a time must be RFC 3339, Unix seconds or relative like now-1h")
    if isinstance(value, (int, float)):
        return _from_unix(float(value))
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        return _in_range(_relative(now, relative.group(1), relative.group(2)), text)
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        return _from_unix(seconds)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"invalid time {value!r:.80}: {_FORMS}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        # 0001-01-01T00:00:00+01:00 is a valid string whose UTC form is not a datetime.
        moment = moment.astimezone(UTC)
    except OverflowError:
        moment = None
    return _in_range(moment, text)


def _relative(now: datetime, sign: str | None, amount: str | None) -> datetime | None:
    if not sign or amount is None:
        return now
    seconds = parse_duration_seconds(amount)
    if seconds > _RANGE_S:
        return None  # further than any time in range; timedelta itself would overflow
    delta = timedelta(seconds=seconds)
    return now - delta if sign == "-" else now + delta


def _in_range(moment: datetime | None, text: str) -> datetime:
    if moment is None or not EARLIEST <= moment < LATEST:
        raise ValueError(f"time {text!r:.80} is out of range: {_range_text()}")
    return moment


def _range_text() -> str:
    return f"times from {iso(EARLIEST)} to before {iso(LATEST)} are accepted"


def _from_unix(seconds: float) -> datetime:
    if not math.isfinite(seconds) or not 0 <= seconds < _RANGE_S:
        raise ValueError(f"Unix time {seconds:.6g} is out of range: {_range_text()}")
    return datetime.fromtimestamp(seconds, tz=UTC)


def unix_nano(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with a Z, as every response writes times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
