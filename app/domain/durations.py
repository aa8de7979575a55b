"""Duration strings (`30s`, `5m`, `1h`, `7d`) as used in settings, queries and rules."""

from __future__ import annotations

import re

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
