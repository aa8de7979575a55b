"""What a native JSON item may hold: the pydantic models of /api/v1/ingest/* and their checks.

Every field is checked on its own, so an item with several problems is refused with all of
them at once. Values are made storable while they are validated, under the same limits as
OTLP (`DecodeLimits`, passed as the validation context): NUL removed (PostgreSQL text and
jsonb cannot hold it), strings truncated at `max_value_chars`, nesting bounded by
`max_value_depth`, integers beyond 64 bits kept as text (the jsonb encoder stops there).
"""

from __future__ import annotations

import binascii
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.domain.times import parse_time
from app.ingest.otlp_common import DecodeLimits, InvalidItem, clean_text

KEY_CHARS = 1024
# A span's duration is stored in nanoseconds as a bigint; past this it could not be, and
# past the time window (retention + skew) the item is refused anyway.
MAX_DURATION_MS = 1e12
_DEFAULT_LIMITS = DecodeLimits(oldest_unix_nano=0, newest_unix_nano=2**63 - 1)


def limits_of(info: ValidationInfo) -> DecodeLimits:
    context = info.context
    return context.get("limits", _DEFAULT_LIMITS) if isinstance(context, dict) else _DEFAULT_LIMITS


def storable(value: Any, limits: DecodeLimits, depth: int = 0) -> Any:
    """`value` as it can be stored; raises InvalidItem when it nests too deep."""
    if isinstance(value, str):
        return clean_text(value, limits.max_value_chars)
    if isinstance(value, (dict, list)):
        if depth >= limits.max_value_depth:
            raise limits.too_deep()
        if isinstance(value, list):
            return [storable(item, limits, depth + 1) for item in value]
        return {
            clean_text(str(key), KEY_CHARS): storable(item, limits, depth + 1)
            for key, item in value.items()
        }
    if type(value) is int and not -(2**63) <= value < 2**63:
        # jsonb numbers would take it, but our JSON encoder stops at 64 bits: keep it as text.
        return str(value)
    return value


def _attributes(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, dict):
        return value  # pydantic says what it should be
    limits = limits_of(info)
    if len(value) > limits.max_attributes:
        raise InvalidItem(f"more than {limits.max_attributes} attributes")
    result = {}
    for key, item in value.items():
        try:
            result[clean_text(str(key), KEY_CHARS)] = storable(item, limits)
        except InvalidItem as problem:
            raise InvalidItem(f"attribute {key!r:.80}: {problem}") from None
    return result


def _storable(value: Any, info: ValidationInfo) -> Any:
    return storable(value, limits_of(info))


def _time(value: str | float | int) -> str | float | int:
    parse_time(value)  # raises ValueError saying what is wrong; the builder parses again
    return value


def _hex_id(size: int) -> AfterValidator:
    def check(value: str) -> str:
        try:
            raw = binascii.unhexlify(value)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != size or raw == bytes(size):
            raise ValueError(f"must be {size * 2} hex characters, not all zeros")
        return value.lower()

    return AfterValidator(check)


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


Attributes = Annotated[dict[str, Any], BeforeValidator(_attributes)]
Time = Annotated[str | float | int, AfterValidator(_time)]
TraceId = Annotated[str, _hex_id(16)]
SpanId = Annotated[str, _hex_id(8)]
# Optional ids: an empty string means none, as it did before ids were checked here.
OptionalTraceId = Annotated[TraceId | None, BeforeValidator(_blank_is_none)]
OptionalSpanId = Annotated[SpanId | None, BeforeValidator(_blank_is_none)]


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _without_nul(cls, data: Any) -> Any:
        # Top-level strings only: nested objects are items or Attributes, cleaned there.
        if not isinstance(data, dict):
            return data
        return {
            key: value.replace("\x00", "") if isinstance(value, str) else value
            for key, value in data.items()
        }


class NativeEvent(_Item):
    name: str = Field(min_length=1, max_length=1024)
    time: Time | None = None
    attributes: Attributes = Field(default_factory=dict)


class NativeSpan(_Item):
    trace_id: TraceId
    span_id: SpanId
    parent_span_id: OptionalSpanId = None
    name: str = Field(min_length=1, max_length=1024)
    service: str = Field(min_length=1, max_length=256)
    kind: Literal["internal", "server", "client", "producer", "consumer"] = "internal"
    start_time: Time
    end_time: Time | None = None
    duration_ms: Annotated[float, Field(ge=0, le=MAX_DURATION_MS, allow_inf_nan=False)] | None = (
        None
    )
    status: Literal["unset", "ok", "error"] = "unset"
    status_message: str = ""
    attributes: Attributes = Field(default_factory=dict)
    events: list[NativeEvent] = Field(default_factory=list)


class NativeError(_Item):
    type: str = Field(min_length=1, max_length=512)
    message: str = Field(default="", max_length=16384)
    stack: Annotated[str | list[dict[str, Any]] | None, BeforeValidator(_storable)] = None
    service: str = Field(min_length=1, max_length=256)
    timestamp: Time | None = None
    trace_id: OptionalTraceId = None
    span_id: OptionalSpanId = None
    attributes: Attributes = Field(default_factory=dict)
    fingerprint: Annotated[list[str] | str | None, BeforeValidator(_storable)] = None

    @field_validator("fingerprint")
    @classmethod
    def _bounded(cls, value: list[str] | str | None) -> list[str] | str | None:
        if isinstance(value, list) and len(value) > 32:
            raise ValueError("at most 32 fingerprint parts")
        return value


class NativeLogError(_Item):
    type: str = Field(min_length=1, max_length=512)
    message: str = ""
    stack: Annotated[str | None, BeforeValidator(_storable)] = None


class NativeLog(_Item):
    timestamp: Time
    level: Literal["trace", "debug", "info", "warn", "error", "fatal"] = "info"
    message: str = Field(max_length=256 * 1024)
    service: str = Field(min_length=1, max_length=256)
    trace_id: OptionalTraceId = None
    span_id: OptionalSpanId = None
    attributes: Attributes = Field(default_factory=dict)
    error: NativeLogError | None = None


class NativeMetric(_Item):
    name: str = Field(min_length=1, max_length=255)
    type: Literal["counter", "gauge", "histogram"]
    value: Annotated[float, Field(allow_inf_nan=False)]
    timestamp: Time | None = None
    unit: str = Field(default="", max_length=63)
    attributes: Attributes = Field(default_factory=dict)
    service: str = Field(default="unknown_service", min_length=1, max_length=256)
