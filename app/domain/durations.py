"""Duration strings (`30s`, `5m`, `1h`, `7d`) as used in settings, queries and rules."""

from __future__ import annotations

import math
import re
from typing import Any

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
# The longest duration anyone writes is far shorter (`1w2d3h4m5s6ms` is 13 characters).
MAX_DURATION_CHARS = 64


def parse_duration_seconds(text: str) -> float:
    """`"1h30m"` → 5400.0. Raises ValueError naming the accepted form."""
    cleaned = text.strip().lower()
    if len(cleaned) > MAX_DURATION_CHARS:
        # Matching is quadratic in a run of digits without a unit (60 KB took minutes), and
        # hundreds of digits are an infinity that no later arithmetic survives.
        raise ValueError(f"duration {text!r:.40}... is too long")
    position = 0
    total = 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not cleaned or position != len(cleaned):
        raise ValueError(
            f"invalid duration {text!r:.80}: use a number with a unit ms, s, m, h, d or w, "
            "e.g. 30s, 5m, 1h, 7d"
        )
    return total


def duration_text(value: Any, *, allow_zero: bool = True, max_s: float | None = None) -> str:
    """A duration field of a request body, checked: the text as sent (`"5m"`), or a bare
    number as seconds (`300` → `"300s"`). Raises ValueError saying what to send."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        # A bare number is seconds, as Prometheus' YAML would not accept but people write.
        if not math.isfinite(value) or value < 0:
            raise ValueError("must be a non-negative duration such as 30s, 5m or 1h")
        value = f"{value:g}s"
    if not isinstance(value, str):
        raise ValueError("must be a duration string such as 30s, 5m or 1h")
    seconds = parse_duration_seconds(value)
    if not allow_zero and seconds <= 0:
        raise ValueError("must be longer than 0s")
    if max_s is not None and seconds > max_s:
        raise ValueError(f"must be at most {max_s / 86400:g}d")
    return value.strip()
