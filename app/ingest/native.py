"""The native JSON API (`/api/v1/ingest/*`): validated items → the same records OTLP makes.

For assistants that do not use OpenTelemetry. Each item is validated on its own, so one
bad item is reported by index and the rest are stored.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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
from app.ingest.otlp_common import DecodeLimits, InvalidItem, MalformedPayload

Time = str | float | int
ItemT = TypeVar("ItemT", bound="_Item")
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


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _without_nul(cls, data: Any) -> Any:
        return without_nul(data)


def without_nul(value: Any) -> Any:
    """Make an item storable: PostgreSQL text and jsonb cannot hold NUL, so strip it."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    if type(value) is int and not -(2**63) <= value < 2**63:
        # jsonb numbers would take it, but our JSON encoder stops at 64 bits: keep it as text.
        return str(value)
    return value


class NativeEvent(_Item):
    name: str = Field(min_length=1)
    time: Time | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class NativeSpan(_Item):
    trace_id: str
    span_id: str
    parent_span_id: str | None = None
    name: str = Field(min_length=1, max_length=1024)
    service: str = Field(min_length=1, max_length=256)
    kind: Literal["internal", "server", "client", "producer", "consumer"] = "internal"
    start_time: Time
    end_time: Time | None = None
    duration_ms: Annotated[float, Field(ge=0)] | None = None
    status: Literal["unset", "ok", "error"] = "unset"
    status_message: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)
    events: list[NativeEvent] = Field(default_factory=list)


class NativeError(_Item):
    type: str = Field(min_length=1, max_length=512)
    message: str = Field(default="", max_length=16384)
    stack: str | list[dict[str, Any]] | None = None
    service: str = Field(min_length=1, max_length=256)
    timestamp: Time | None = None
    trace_id: str | None = None
    span_id: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    fingerprint: list[str] | str | None = None

    @field_validator("fingerprint")
    @classmethod
    def _bounded(cls, value: list[str] | str | None) -> list[str] | str | None:
        if isinstance(value, list) and len(value) > 32:
            raise ValueError("at most 32 fingerprint parts")
        return value


class NativeLogError(_Item):
    type: str = Field(min_length=1, max_length=512)
    message: str = ""
    stack: str | None = None


class NativeLog(_Item):
    timestamp: Time
    level: Literal["trace", "debug", "info", "warn", "error", "fatal"] = "info"
    message: str = Field(max_length=256 * 1024)
    service: str = Field(min_length=1, max_length=256)
    trace_id: str | None = None
    span_id: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    error: NativeLogError | None = None


class NativeMetric(_Item):
    name: str = Field(min_length=1, max_length=255)
    type: Literal["counter", "gauge", "histogram"]
    value: float
    timestamp: Time | None = None
    unit: str = Field(default="", max_length=63)
    attributes: dict[str, Any] = Field(default_factory=dict)
    service: str = Field(default="unknown_service", min_length=1, max_length=256)

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("value must be a finite number")
        return value


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


def _decode(
    document: Any, key: str, model: type[ItemT], build: Callable[[ItemT], Any]
) -> NativeBatch:
    """Validate and convert each item on its own: a bad one is reported, not fatal."""
    batch = NativeBatch()
    for index, raw in enumerate(items_of(document, key)):
        try:
            batch.accept(index, build(model.model_validate(raw)))
        except (ValidationError, InvalidItem, ValueError) as problem:
            batch.reject_index(index, reason(problem))
    return batch


class _Resources:
    """One Resource per service name within a request (rows serialise each once)."""

    def __init__(self) -> None:
        self._by_service: dict[str, Resource] = {}

    def of(self, service: str) -> Resource:
        resource = self._by_service.get(service)
        if resource is None:
            resource = self._by_service[service] = Resource({"service.name": service})
        return resource


def decode_native_spans(document: Any, limits: DecodeLimits) -> NativeBatch:
    resources = _Resources()
    return _decode(
        document,
        "spans",
        NativeSpan,
        lambda item: _span(item, resources.of(item.service), limits),
    )


def _span(item: NativeSpan, resource: Resource, limits: DecodeLimits) -> SpanRecord:
    start = _nanos(item.start_time, "start_time")
    if item.end_time is not None:
        end = _nanos(item.end_time, "end_time")
    elif item.duration_ms is not None:
        end = start + int(item.duration_ms * 1_000_000)
    else:
        raise InvalidItem("give end_time or duration_ms")
    if end < start:
        raise InvalidItem("end_time is before start_time")
    limits.check_time(start, "start_time")
    events = [
        {
            "time_unix_nano": _nanos(event.time, "events.time") if event.time is not None else end,
            "name": event.name,
            "attributes": _bounded_attributes(event.attributes, limits),
            "dropped_attributes_count": 0,
        }
        for event in item.events
    ]
    return SpanRecord(
        trace_id=_hex_id(item.trace_id, "trace_id", 16),
        span_id=_hex_id(item.span_id, "span_id", 8),
        parent_span_id=_hex_id(item.parent_span_id, "parent_span_id", 8)
        if item.parent_span_id
        else None,
        name=item.name,
        kind=_KINDS[item.kind],
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=_bounded_attributes(item.attributes, limits),
        resource=resource,
        scope=NATIVE_SCOPE,
        status_code=_STATUS[item.status],
        status_message=item.status_message,
        events=events,
    )


def decode_native_logs(document: Any, limits: DecodeLimits) -> NativeBatch:
    resources = _Resources()
    return _decode(
        document,
        "logs",
        NativeLog,
        lambda item: _log(item, resources.of(item.service), limits),
    )


def _log(item: NativeLog, resource: Resource, limits: DecodeLimits) -> LogRecord:
    moment = _nanos(item.timestamp, "timestamp")
    limits.check_time(moment, "timestamp")
    attributes = dict(_bounded_attributes(item.attributes, limits))
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
        trace_id=_hex_id(item.trace_id, "trace_id", 16) if item.trace_id else None,
        span_id=_hex_id(item.span_id, "span_id", 8) if item.span_id else None,
    )


def decode_native_metrics(document: Any, limits: DecodeLimits, now_unix_nano: int) -> NativeBatch:
    """A `counter` is a monotonic delta sum; a `histogram` value is one observation."""
    streams: dict[tuple[str, str, str, str], MetricStream] = {}

    def point(item: NativeMetric) -> MetricPoint:
        key = (item.service, item.name, item.type, item.unit)
        stream = streams.get(key)
        if stream is None:
            stream = streams[key] = _stream(item)
        return _point(item, stream, limits, now_unix_nano)

    return _decode(document, "metrics", NativeMetric, point)


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
    moment = _nanos(item.timestamp, "timestamp") if item.timestamp is not None else now_unix_nano
    limits.check_time(moment, "timestamp")
    attributes = _bounded_attributes(item.attributes, limits)
    if item.type == "counter":
        if item.value < 0:
            raise InvalidItem("a counter value must not be negative")
        return MetricPoint(stream, attributes, moment, value=item.value)
    if item.type == "gauge":
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


def decode_native_errors(document: Any, limits: DecodeLimits, now_unix_nano: int) -> NativeBatch:
    return _decode(
        document, "errors", NativeError, lambda item: _error(item, limits, now_unix_nano)
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
        trace_id=_hex_id(item.trace_id, "trace_id", 16) if item.trace_id else None,
        span_id=_hex_id(item.span_id, "span_id", 8) if item.span_id else None,
        attributes=_bounded_attributes(item.attributes, limits),
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


def _hex_id(value: str | None, field: str, size: int) -> bytes:
    try:
        raw = binascii.unhexlify(value or "")
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size or raw == bytes(size):
        raise InvalidItem(f"{field} must be {size * 2} hex characters, not all zeros")
    return raw


def _bounded_attributes(attributes: dict[str, Any], limits: DecodeLimits) -> dict[str, Any]:
    if len(attributes) > limits.max_attributes:
        raise InvalidItem(f"more than {limits.max_attributes} attributes")
    return attributes


def reason(problem: Exception) -> str:
    if isinstance(problem, ValidationError):
        parts = []
        for error in problem.errors()[:5]:
            where = ".".join(str(part) for part in error["loc"])
            parts.append(f"{where}: {error['msg']}" if where else error["msg"])
        return "; ".join(parts)
    return str(problem)
