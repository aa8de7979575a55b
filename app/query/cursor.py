"""Opaque keyset cursors for newest-first listings: what they hold, how they are checked.

A cursor is base64url (no padding) of a small JSON object:

    {"v": 1, "k": kind, "p": [time_us, tie], "w": [start_us, end_us], "f": filters}

`p` is the position of the last item of the page (its order key: a time in Unix
microseconds, PostgreSQL's own precision, and a tie-breaker), `w` the time window the first
page resolved (so `start=now-1h` does not slide while a client pages), and `f` a digest of
the other filters, so a cursor is refused with filters it was not issued for. Cursors are
not secret and need no signature: every query is scoped to the caller's project anyway,
so a forged cursor can only choose a position in the caller's own data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

VERSION = 1
# A genuine cursor is ~150 characters; refuse megabytes of base64 before decoding them.
MAX_CURSOR_CHARS = 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1
NOT_A_CURSOR = "cursor is not valid; pass next_cursor from the previous page unchanged"


class InvalidCursor(ValueError):
    """The cursor is not one this endpoint issued for these filters (the API answers 400)."""


@dataclass(frozen=True, slots=True)
class Cursor:
    kind: str
    time: datetime
    tie: str | int
    start: datetime
    end: datetime
    filters: str


def to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def filters_digest(filters: Mapping[str, Any]) -> str:
    """A short, order-independent digest of the filters a cursor belongs to."""
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(cursor: Cursor) -> str:
    document = {
        "v": VERSION,
        "k": cursor.kind,
        "p": [to_micros(cursor.time), cursor.tie],
        "w": [to_micros(cursor.start), to_micros(cursor.end)],
        "f": cursor.filters,
    }
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str, *, kind: str, filters: str, tie_type: type) -> Cursor:
    """Parse and check a cursor; raises InvalidCursor saying what is wrong."""
    if len(text) > MAX_CURSOR_CHARS:
        raise InvalidCursor("cursor is too long; pass next_cursor from the previous page")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidCursor(NOT_A_CURSOR) from None
    if not isinstance(document, dict) or document.get("v") != VERSION:
        raise InvalidCursor(NOT_A_CURSOR)
    if document.get("k") != kind:
        raise InvalidCursor(
            f"cursor was not issued by the {kind} search; pass next_cursor from a {kind} page"
        )
    position, window = document.get("p"), document.get("w")
    if not (_pair(position, int, tie_type) and _pair(window, int, int)):
        raise InvalidCursor(NOT_A_CURSOR)
    if isinstance(position[1], int) and not _BIGINT_MIN <= position[1] <= _BIGINT_MAX:
        # A tie-breaker is a bigint row id; a larger number was not issued by us.
        raise InvalidCursor(NOT_A_CURSOR)
    if document.get("f") != filters:
        raise InvalidCursor(
            "cursor was issued for other filters; keep the filters of the first page, "
            "or drop cursor to start again"
        )
    try:
        time, start, end = (from_micros(value) for value in (position[0], *window))
    except OverflowError:
        raise InvalidCursor("cursor holds a time out of range") from None
    return Cursor(kind, time, position[1], start, end, filters)


def _pair(value: Any, first: type, second: type) -> bool:
    # bool is an int subclass; a cursor never holds booleans.
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(
            isinstance(item, expected) and not isinstance(item, bool)
            for item, expected in zip(value, (first, second), strict=True)
        )
    )
