"""Error events: what counts as an error in spans and logs, and each event's group identity.

Three sources feed error groups: span events named `exception`, log records carrying
`exception.*` attributes (OpenTelemetry semantic conventions for exceptions), and the
native `/api/v1/ingest/errors` endpoint. All are turned into `ErrorEvent`s here, with
their fingerprint computed by app/domain/fingerprint.py.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.domain.fingerprint import compute_fingerprint
from app.domain.records import SpanRecord
from app.domain.stacktrace import Frame, parse_stacktrace

EXCEPTION_EVENT = "exception"
TYPE_KEY = "exception.type"
MESSAGE_KEY = "exception.message"
STACKTRACE_KEY = "exception.stacktrace"
# Not in the conventions, but the natural way to pass a Sentry-style custom fingerprint.
FINGERPRINT_KEY = "error.fingerprint"
MAX_STACKTRACE_CHARS = 64 * 1024
_DAY_NANOS = 86_400 * 1_000_000_000


@dataclass(slots=True)
class ErrorEvent:
    event_id: bytes
    time_unix_nano: int
    service_name: str
    type: str
    message: str
    stacktrace: str
    source: str  # span, log or native
    fingerprint: str
    message_template: str
    culprit: str
    trace_id: bytes | None = None
    span_id: bytes | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def make_error_event(
    *,
    error_type: str | None,
    message: str | None,
    stacktrace: str | list[dict] | None,
    time_unix_nano: int,
    service_name: str,
    source: str,
    event_id: bytes | None = None,
    trace_id: bytes | None = None,
    span_id: bytes | None = None,
    attributes: dict[str, Any] | None = None,
    custom_fingerprint: list[str] | str | None = None,
) -> ErrorEvent:
    # Parsed once: both the fingerprint and the culprit read the frames.
    frames = parse_stacktrace(stacktrace)
    fingerprint = compute_fingerprint(
        error_type=error_type, message=message, stacktrace=frames, custom=custom_fingerprint
    )
    stack_text = stacktrace if isinstance(stacktrace, str) else _frames_text(stacktrace)
    return ErrorEvent(
        event_id=event_id or uuid.uuid4().bytes,
        time_unix_nano=time_unix_nano,
        service_name=service_name,
        type=(error_type or "").strip() or "Error",
        message=message or "",
        stacktrace=stack_text[:MAX_STACKTRACE_CHARS],
        source=source,
        fingerprint=fingerprint.value,
        message_template=fingerprint.message_template,
        culprit=culprit(frames),
        trace_id=trace_id,
        span_id=span_id,
        attributes=attributes or {},
    )


def culprit(frames: Sequence[Frame]) -> str:
    """Where it broke: the innermost in-app frame (or innermost frame), as module.function."""
    if not frames:
        return ""
    in_app = [frame for frame in frames if frame.in_app]
    frame = (in_app or frames)[-1]
    where = frame.module or frame.filename or "?"
    return f"{where} in {frame.function}" if frame.function else where


def errors_from_spans(spans: Iterable[SpanRecord]) -> list[ErrorEvent]:
    """One event per `exception` span event. Ids derive from the span, so a re-sent span
    yields the same events and is not counted twice."""
    events = []
    for span in spans:
        for index, event in enumerate(span.events):
            if event.get("name") != EXCEPTION_EVENT:
                continue
            attributes = event.get("attributes") or {}
            events.append(
                make_error_event(
                    error_type=_text(attributes.get(TYPE_KEY)),
                    message=_text(attributes.get(MESSAGE_KEY)) or span.status_message,
                    stacktrace=_text(attributes.get(STACKTRACE_KEY)),
                    time_unix_nano=_event_time(event.get("time_unix_nano"), span),
                    service_name=span.service_name,
                    source="span",
                    event_id=_derived_id(span.trace_id, span.span_id, index),
                    trace_id=span.trace_id,
                    span_id=span.span_id,
                    attributes=attributes,
                    custom_fingerprint=_fingerprint_attribute(attributes)
                    or _fingerprint_attribute(span.attributes),
                )
            )
    return events


def is_error_log(attributes: dict[str, Any]) -> bool:
    return TYPE_KEY in attributes or MESSAGE_KEY in attributes or STACKTRACE_KEY in attributes


def error_from_log(
    attributes: dict[str, Any],
    *,
    body_text: str,
    time_unix_nano: int,
    service_name: str,
    trace_id: bytes | None,
    span_id: bytes | None,
    event_id: bytes | None = None,
) -> ErrorEvent:
    return make_error_event(
        event_id=event_id,
        error_type=_text(attributes.get(TYPE_KEY)),
        message=_text(attributes.get(MESSAGE_KEY)) or body_text,
        stacktrace=_text(attributes.get(STACKTRACE_KEY)),
        time_unix_nano=time_unix_nano,
        service_name=service_name,
        source="log",
        trace_id=trace_id,
        span_id=span_id,
        attributes=attributes,
        custom_fingerprint=_fingerprint_attribute(attributes),
    )


def _event_time(time_unix_nano: int | None, span: SpanRecord) -> int:
    # The span's times passed the accepted window; a stray event clock must not escape it.
    if time_unix_nano and abs(time_unix_nano - span.start_time_unix_nano) < _DAY_NANOS:
        return time_unix_nano
    return span.end_time_unix_nano


def _derived_id(trace_id: bytes, span_id: bytes, index: int) -> bytes:
    return hashlib.blake2b(trace_id + span_id + index.to_bytes(4, "big"), digest_size=16).digest()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _fingerprint_attribute(attributes: dict[str, Any]) -> list[str] | str | None:
    value = attributes.get(FINGERPRINT_KEY)
    if isinstance(value, list):
        return [str(item) for item in value]
    return value if isinstance(value, str) and value else None


def _frames_text(frames: list[dict] | None) -> str:
    if not frames:
        return ""
    lines = []
    for frame in frames:
        where = frame.get("filename") or frame.get("module") or "?"
        line = f"  at {frame.get('function') or '?'} ({where}"
        if frame.get("lineno") is not None:
            line += f":{frame.get('lineno')}"
        lines.append(line + ")")
    return "\n".join(lines)
