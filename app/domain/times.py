"""Times in query parameters and native bodies: RFC 3339, Unix seconds, or `now-1h`."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from app.domain.durations import parse_duration_seconds

_RELATIVE = re.compile(r"^now(?:\s*([+-])\s*(.+))?$", re.IGNORECASE)


def parse_time(value: str | float | int, *, now: datetime | None = None) -> datetime:
    """Parse a time; raises ValueError naming the accepted forms."""
    now = now or datetime.now(UTC)
    if isinstance(value, bool):
        raise ValueError("a time must be RFC 3339, Unix seconds or relative like now-1h")
    if isinstance(value, (int, float)):
        return _from_unix(float(value))
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        if not relative.group(1):
            return now
        seconds = parse_duration_seconds(relative.group(2))
        delta = timedelta(seconds=seconds)
        return now - delta if relative.group(1) == "-" else now + delta
    try:
        return _from_unix(float(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"invalid time {value!r}: use RFC 3339 (2026-11-23T10:00:00Z), Unix seconds, "
            "or relative like now-1h"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _from_unix(seconds: float) -> datetime:
    if not math.isfinite(seconds) or not 0 <= seconds < 32503680000:
        raise ValueError(f"Unix time {seconds} is out of range")
    return datetime.fromtimestamp(seconds, tz=UTC)


def unix_nano(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with a Z, as every response writes times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
