"""Log records as stored, severity levels, and the text that full-text search reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.domain.records import Resource, Scope

# API level names and the first OTLP severity number of each: every level spans four
# numbers (TRACE..TRACE4 = 1..4, DEBUG = 5..8, ... FATAL = 21..24).
LEVELS: tuple[str, ...] = ("trace", "debug", "info", "warn", "error", "fatal")
LEVEL_FLOOR: dict[str, int] = {name: 1 + 4 * index for index, name in enumerate(LEVELS)}
SEVERITY_MAX = 24

# Severity texts that senders commonly set without a number (syslog, log4j, Python, .NET).
_TEXT_LEVELS: dict[str, str] = {
    "trace": "trace",
    "finest": "trace",
    "verbose": "trace",
    "debug": "debug",
    "fine": "debug",
    "info": "info",
    "information": "info",
    "informational": "info",
    "notice": "info",
    "warn": "warn",
    "warning": "warn",
    "error": "error",
    "err": "error",
    "severe": "error",
    "fatal": "fatal",
    "critical": "fatal",
    "crit": "fatal",
    "alert": "fatal",
    "emergency": "fatal",
    "emerg": "fatal",
    "panic": "fatal",
}

# Attributes that carry the human message of a log line. Their string values join the body
# in `search_text`. `exception.stacktrace` is left out on purpose: file paths and line
# numbers would flood the index with tokens nobody searches for, and it can be very long.
MESSAGE_ATTRIBUTES: tuple[str, ...] = (
    "message",
    "log.message",
    "msg",
    "exception.type",
    "exception.message",
    "error.type",
    "error.message",
    "event.name",
)

# Bound on `search_text`: enough for any real message, small enough that the GIN index
# (to_tsvector over this column) stays cheap to build at ingest.
SEARCH_TEXT_CHARS = 32 * 1024


@dataclass(slots=True)
class LogRecord:
    """One OTLP log record as stored. Times are Unix nanoseconds; ids are raw bytes.

    `time_unix_nano` is when the event happened; when the sender left it 0 it holds the
    observed time instead (OTLP data model: "use ObservedTimestamp if Timestamp is
    missing"), so it is always set and decides the partition. `observed_time_unix_nano`
    is 0 when not sent. `body` is the AnyValue as plain JSON: a string, number, boolean,
    list or dict (bytes as base64 text, like the OTLP JSON encoding), or None when absent.
    """

    time_unix_nano: int
    observed_time_unix_nano: int
    severity_number: int
    severity_text: str
    body: Any
    attributes: dict[str, Any]
    resource: Resource
    scope: Scope
    trace_id: bytes | None = None
    span_id: bytes | None = None
    flags: int = 0
    event_name: str = ""
    dropped_attributes_count: int = 0
    # Content hash set when the row is built; also the id of an error event it carries.
    log_id: bytes | None = None

    @property
    def service_name(self) -> str:
        return self.resource.service_name

    @property
    def level(self) -> str | None:
        return level_name(self.severity_number, self.severity_text)


def level_name(severity_number: int, severity_text: str = "") -> str | None:
    """The API level of a severity number; for 0 (unspecified), a well-known severity text.

    None when neither says anything: an unspecified severity is not guessed.
    """
    if 1 <= severity_number <= SEVERITY_MAX:
        return LEVELS[(severity_number - 1) // 4]
    if severity_text:
        return _TEXT_LEVELS.get(severity_text.strip().lower())
    return None


def severity_floor(level: str) -> int:
    """The lowest severity number of a level, for `level` (minimum) filters; KeyError if unknown."""
    return LEVEL_FLOOR[level]


def search_text(
    body: Any, attributes: dict[str, Any], event_name: str = "", limit: int = SEARCH_TEXT_CHARS
) -> str:
    """The words full-text search sees: the body as text, the event name, message attributes.

    A string body is taken as is; a structured body contributes its string leaves (not its
    keys, which are schema rather than content) and scalar bodies their text form. Then the
    event name and the string values of MESSAGE_ATTRIBUTES, each once. Cut at `limit` chars.
    """
    parts: list[str] = []
    budget = limit
    if isinstance(body, str):
        if body:
            parts.append(body)
            budget -= len(body)
    elif isinstance(body, (dict, list)):
        budget = _string_leaves(body, parts, budget)
    elif body is not None:
        text = "true" if body is True else "false" if body is False else str(body)
        parts.append(text)
        budget -= len(text)
    if event_name and budget > 0:
        parts.append(event_name)
        budget -= len(event_name) + 1
    for key in MESSAGE_ATTRIBUTES:
        if budget <= 0:
            break
        value = attributes.get(key)
        if isinstance(value, str) and value and value != body:
            parts.append(value)
            budget -= len(value) + 1
    text = " ".join(parts)
    return text if len(text) <= limit else text[:limit]


def _string_leaves(node: Any, parts: list[str], budget: int) -> int:
    # Depth-first, stopping once the budget is spent so a huge body costs no more than
    # the text it can contribute.
    stack = [node]
    while stack and budget > 0:
        item = stack.pop()
        if isinstance(item, str):
            if item:
                parts.append(item)
                budget -= len(item) + 1
        elif isinstance(item, dict):
            stack.extend(reversed(item.values()))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return budget
