"""The native JSON API (`/api/v1/ingest/*`): validated items → the same records OTLP makes.

For assistants that do not use OpenTelemetry. Each item is validated on its own, so one
bad item is reported by index and the rest are stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from app.domain.errors import MESSAGE_KEY, STACKTRACE_KEY, TYPE_KEY, ErrorEvent, make_error_event
from app.domain.logs import LEVEL_FLOOR, LogRecord
from app.domain.metrics import (
    GAUGE,
    HISTOGRAM,
    SUM,
    TEMPORALITY_DELTA,
    TEMPORALITY_UNSPECIFIED,
    MetricPoint,
    MetricStream,
)
from app.domain.records import DecodedBatch, Resource, Scope, SpanRecord
from app.domain.times import parse_time, unix_nano
from app.ingest.native_items import (
    NativeError,
    NativeLog,
    NativeMetric,
    NativeSpan,
    Time,
)
from app.ingest.offload import Steps
from app.ingest.otlp_common import DecodeLimits, InvalidItem, MalformedPayload, clean_text

ItemT = TypeVar("ItemT", bound=BaseModel)
NATIVE_SCOPE = Scope(name="native-api")


class NativeBatch(DecodedBatch):
    """Also keeps which input index each accepted item came from, for per-item answers."""

    __slots__ = ("indexes", "reasons")

    def __init__(self) -> None:
        super().__init__(items=[])
        self.indexes: list[int] = []
        self.reasons: list[dict[str, Any]] = []

    def accept(self, index: int, item: Any) -> None:
        self.items.append(item)
        self.indexes.append(index)

    def reject_index(self, index: int, reason: str) -> None:
        self.reject(f"item {index}: {reason}")
        self.reasons.append({"index": index, "reason": reason})

    def refuse(self, refused: dict[int, str]) -> None:
        """Items that storing refused (by position in `items`) become rejections too."""
        if not refused:
            return
        kept_items, kept_indexes = [], []
        for position, (item, index) in enumerate(zip(self.items, self.indexes, strict=True)):
            if position in refused:
                self.reject_index(index, refused[position])
            else:
                kept_items.append(item)
                kept_indexes.append(index)
        self.items, self.indexes = kept_items, kept_indexes
        self.reasons.sort(key=lambda reason: reason["index"])


# The OpenTelemetry SDKs' default explicit bucket bounds, so native histograms line up
# with what instrumented clients send.
DEFAULT_BOUNDS = [0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0,
                  2500.0, 5000.0, 7500.0, 10000.0]  # fmt: skip


_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
_STATUS = {"unset": 0, "ok": 1, "error": 2}


def items_of(document: Any, key: str) -> list[Any]:
    if not isinstance(document, dict) or not isinstance(document.get(key), list):
        raise MalformedPayload(f'body must be a JSON object with a "{key}" array')
    return document[key]


# Items validated and converted between two pauses of the decoders below.
ITEMS_PER_STEP = 16


def _decode(
    document: Any,
    key: str,
    model: type[ItemT],
    build: Callable[[ItemT], Any],
    limits: DecodeLimits,
) -> Steps[NativeBatch]:
    """Validate and convert each item on its own: a bad one is reported, not fatal. As
    sliced steps (see app/ingest/offload.py), a pause every `ITEMS_PER_STEP` items."""
    batch = NativeBatch()
    context = {"limits": limits}
    for index, raw in enumerate(items_of(document, key)):
        try:
            batch.accept(index, build(model.model_validate(raw, context=context)))
        except (ValidationError, ValueError, ArithmeticError) as problem:
            # ArithmeticError: an overflow the checks missed still costs only this item.
            batch.reject_index(index, reason(problem))
        if not (index + 1) % ITEMS_PER_STEP:
            yield
    return batch


class _Problems:
    """Problems of one item found after its fields validated, all reported together."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def window(self, limits: DecodeLimits, unix_nano: int, field: str) -> None:
        try:
            limits.check_time(unix_nano, field)
        except InvalidItem as problem:
            self.found.append(str(problem))

    def add(self, problem: str) -> None:
        self.found.append(problem)

    def raise_any(self) -> None:
        if self.found:
            raise InvalidItem("; ".join(self.found))


class _Resources:
    """One Resource per service name within a request (rows serialise each once)."""

    def __init__(self) -> None:
        self._by_service: dict[str, Resource] = {}

    def of(self, service: str) -> Resource:
        resource = self._by_service.get(service)
        if resource is None:
            resource = self._by_service[service] = Resource({"service.name": service})
        return resource


def decode_native_spans_steps(document: Any, limits: DecodeLimits) -> Steps[NativeBatch]:
    resources = _Resources()
    return _decode(
        document,
        "spans",
        NativeSpan,
        lambda item: _span(item, resources.of(item.service), limits),
        limits,
    )


def _span(item: NativeSpan, resource: Resource, limits: DecodeLimits) -> SpanRecord:
    problems = _Problems()
    start = _nanos(item.start_time, "start_time")
    problems.window(limits, start, "start_time")
    end: int | None = None
    if item.end_time is not None:
        end = _nanos(item.end_time, "end_time")
        problems.window(limits, end, "end_time")
    elif item.duration_ms is not None:
        end = start + round(item.duration_ms * 1_000_000)
        problems.window(limits, end, "start_time + duration_ms")
    else:
        problems.add("give end_time or duration_ms")
    if end is not None and end < start:
        problems.add("end_time is before start_time")
    problems.raise_any()
    assert end is not None
    # Past the limit, events are dropped and counted, as the OpenTelemetry SDKs do.
    kept = item.events[: limits.max_events]
    events = [
        {
            "time_unix_nano": _nanos(event.time, "events.time") if event.time is not None else end,
            "name": event.name,
            "attributes": event.attributes,
            "dropped_attributes_count": 0,
        }
        for event in kept
    ]
    return SpanRecord(
        trace_id=bytes.fromhex(item.trace_id),
        span_id=bytes.fromhex(item.span_id),
        parent_span_id=_raw_id(item.parent_span_id),
        name=item.name,
        kind=_KINDS[item.kind],
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=item.attributes,
        resource=resource,
        scope=NATIVE_SCOPE,
        status_code=_STATUS[item.status],
        status_message=clean_text(item.status_message, limits.max_value_chars),
        events=events or (),
        dropped_events_count=len(item.events) - len(kept),
    )


def decode_native_logs_steps(document: Any, limits: DecodeLimits) -> Steps[NativeBatch]:
    resources = _Resources()
    return _decode(
        document,
        "logs",
        NativeLog,
        lambda item: _log(item, resources.of(item.service), limits),
        limits,
    )


def _log(item: NativeLog, resource: Resource, limits: DecodeLimits) -> LogRecord:
    moment = _nanos(item.timestamp, "timestamp")
    limits.check_time(moment, "timestamp")
    attributes = dict(item.attributes)
    if item.error is not None:
        # The OpenTelemetry exception attributes: the log becomes an error event as well.
        attributes[TYPE_KEY] = item.error.type
        attributes[MESSAGE_KEY] = item.error.message or item.message
        if item.error.stack:
            attributes[STACKTRACE_KEY] = item.error.stack
    return LogRecord(
        time_unix_nano=moment,
        observed_time_unix_nano=0,
        severity_number=LEVEL_FLOOR[item.level],
        severity_text=item.level.upper(),
        body=item.message,
        attributes=attributes,
        resource=resource,
        scope=NATIVE_SCOPE,
        trace_id=_raw_id(item.trace_id),
        span_id=_raw_id(item.span_id),
    )


def decode_native_metrics_steps(
    document: Any, limits: DecodeLimits, now_unix_nano: int
) -> Steps[NativeBatch]:
    """A `counter` is a monotonic delta sum; a `histogram` value is one observation."""
    streams: dict[tuple[str, str, str, str], MetricStream] = {}

    def point(item: NativeMetric) -> MetricPoint:
        key = (item.service, item.name, item.type, item.unit)
        stream = streams.get(key)
        if stream is None:
            stream = streams[key] = _stream(item)
        return _point(item, stream, limits, now_unix_nano)

    return _decode(document, "metrics", NativeMetric, point, limits)


def _stream(item: NativeMetric) -> MetricStream:
    kind = {"counter": SUM, "gauge": GAUGE, "histogram": HISTOGRAM}[item.type]
    return MetricStream(
        name=item.name,
        type=kind,
        unit=item.unit,
        description="",
        temporality=TEMPORALITY_UNSPECIFIED if kind == GAUGE else TEMPORALITY_DELTA,
        is_monotonic=item.type == "counter",
        resource=Resource({"service.name": item.service}),
        scope=NATIVE_SCOPE,
    )


def _point(
    item: NativeMetric, stream: MetricStream, limits: DecodeLimits, now_unix_nano: int
) -> MetricPoint:
    problems = _Problems()
    moment = _nanos(item.timestamp, "timestamp") if item.timestamp is not None else now_unix_nano
    problems.window(limits, moment, "timestamp")
    if item.type == "counter" and item.value < 0:
        problems.add("a counter value must not be negative")
    problems.raise_any()
    attributes = item.attributes
    if item.type != "histogram":
        return MetricPoint(stream, attributes, moment, value=item.value)
    counts = [0] * (len(DEFAULT_BOUNDS) + 1)
    counts[sum(1 for bound in DEFAULT_BOUNDS if item.value > bound)] = 1
    return MetricPoint(
        stream,
        attributes,
        moment,
        count=1,
        sum=item.value,
        min=item.value,
        max=item.value,
        explicit_bounds=list(DEFAULT_BOUNDS),
        bucket_counts=counts,
    )


def decode_native_errors_steps(
    document: Any, limits: DecodeLimits, now_unix_nano: int
) -> Steps[NativeBatch]:
    return _decode(
        document, "errors", NativeError, lambda item: _error(item, limits, now_unix_nano), limits
    )


def _error(item: NativeError, limits: DecodeLimits, now_unix_nano: int) -> ErrorEvent:
    moment = _nanos(item.timestamp, "timestamp") if item.timestamp is not None else now_unix_nano
    limits.check_time(moment, "timestamp")
    # With the sender's own timestamp the item has an identity: a retry is the same event.
    # Without one the time is ours, so a resent item cannot be told from a new one.
    event_id = _content_id(item) if item.timestamp is not None else None
    return make_error_event(
        event_id=event_id,
        error_type=item.type,
        message=item.message,
        stacktrace=item.stack,
        time_unix_nano=moment,
        service_name=item.service,
        source="native",
        trace_id=_raw_id(item.trace_id),
        span_id=_raw_id(item.span_id),
        attributes=item.attributes,
        custom_fingerprint=item.fingerprint,
    )


def _content_id(item: NativeError) -> bytes:
    document = item.model_dump(mode="json")
    return hashlib.blake2b(
        orjson.dumps(document, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).digest()


def _nanos(value: Time, field: str) -> int:
    try:
        return unix_nano(parse_time(value))
    except ValueError as error:
        raise InvalidItem(f"{field}: {error}") from None


def _raw_id(value: str | None) -> bytes | None:
    # Checked as hex of the right length by the item's model.
    return bytes.fromhex(value) if value else None


MAX_REASONS = 20


def reason(problem: Exception) -> str:
    """Every problem of an item (up to MAX_REASONS), each naming its field."""
    if not isinstance(problem, ValidationError):
        return str(problem)
    errors = problem.errors()
    parts = []
    for error in errors[:MAX_REASONS]:
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    if len(errors) > MAX_REASONS:
        parts.append(f"and {len(errors) - MAX_REASONS} more")
    return "; ".join(parts)
