"""What every OTLP decoder shares: AnyValue and attribute conversion, ids, limits, time window.

Two inputs reach the same plain values: protobuf messages (`*_pb` functions) and the
OTLP JSON encoding already parsed into dicts and lists (`*_json` functions). The JSON
side is a direct walk rather than `json_format.ParseDict`, which measured about 20
times slower and silently base64-decodes hex ids into garbage.

JSON rules (OTLP spec, "JSON Protobuf Encoding"): keys are lowerCamelCase (snake_case is
accepted too), trace and span ids are hex (any case), 64-bit integers may be strings or
numbers, enums are integers (their names are accepted too), unknown fields are ignored.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.common.v1 import common_pb2

from app.domain.genai_conventions import READ_KEYS as GENAI_KEYS
from app.domain.records import Resource, Scope

TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8
NANOS_PER_SECOND = 1_000_000_000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Ranges of the protobuf types, so JSON cannot carry what protobuf could not (and what a
# bigint/integer column or jsonb would refuse, sinking the whole batch instead of one item).
_UINT64_MAX = 2**64 - 1
_UINT32_MAX = 2**32 - 1
_INT32_MAX = 2**31 - 1


class MalformedPayload(ValueError):
    """The whole request cannot be decoded (answered with 400)."""


class InvalidItem(ValueError):
    """One span, log record or point is invalid (reported through partial success)."""


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds applied while decoding; times are Unix nanoseconds.

    `max_value_depth` bounds how many arrays and maps an attribute value (or a log body)
    may nest: beyond it the item is rejected, before a recursive walk or the jsonb encoder
    (which stops at 255 levels) fails on the whole batch. It is well below what protobuf
    parses (100 message levels, about 31 nested maps), so that a protobuf item too deep
    for us is still rejected alone; deeper still, the parser refuses the body. Events and links past
    `max_events`/`max_links` are dropped and counted, as the OpenTelemetry SDKs do with
    their default span limits (128 each).
    """

    oldest_unix_nano: int
    newest_unix_nano: int
    max_attributes: int = 128
    max_value_chars: int = 16384
    retention_label: str = "retention"
    max_value_depth: int = 16
    max_events: int = 128
    max_links: int = 128

    def too_deep(self) -> InvalidItem:
        return InvalidItem(f"value nested deeper than {self.max_value_depth} levels")

    def check_time(self, unix_nano: int, field: str) -> None:
        if unix_nano < self.oldest_unix_nano:
            raise InvalidItem(
                f"{field} {format_unix_nano(unix_nano)} is older than the {self.retention_label} "
                "and would be deleted at once; send current data"
            )
        if unix_nano > self.newest_unix_nano:
            raise InvalidItem(
                f"{field} {format_unix_nano(unix_nano)} is more than the allowed skew in the "
                "future; check the sender's clock"
            )


def format_unix_nano(unix_nano: int) -> str:
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(unix_nano / NANOS_PER_SECOND, tz=UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{unix_nano}ns"


def clean_text(value: str, limit: int) -> str:
    # PostgreSQL text and jsonb cannot hold NUL; a stray one must not sink the batch.
    if "\x00" in value:
        value = value.replace("\x00", "")
    if len(value) > limit:
        value = value[:limit]
    return value


# ---------------------------------------------------------------- protobuf


def any_value_pb(value: common_pb2.AnyValue, limits: DecodeLimits, depth: int = 0) -> Any:
    """An AnyValue as a plain value; `depth` is how many arrays and maps enclose it."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return clean_text(value.string_value, limits.max_value_chars)
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return _finite(value.double_value)
    if kind == "bool_value":
        return value.bool_value
    if kind in ("array_value", "kvlist_value") and depth >= limits.max_value_depth:
        raise limits.too_deep()
    if kind == "array_value":
        return [any_value_pb(item, limits, depth + 1) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {
            clean_text(kv.key, 1024): any_value_pb(kv.value, limits, depth + 1)
            for kv in value.kvlist_value.values
        }
    if kind == "bytes_value":
        # jsonb has no bytes; the OTLP JSON encoding's base64 is the natural text form,
        # cut at the value limit as JSON's is. Only the bytes the kept text shows are
        # encoded: base64 of a prefix of 3n bytes is a prefix of the whole's base64.
        kept = value.bytes_value[: (limits.max_value_chars + 3) // 4 * 3]
        return base64.b64encode(kept).decode("ascii")[: limits.max_value_chars]
    return None


def attributes_pb(key_values: Any, limits: DecodeLimits) -> tuple[dict[str, Any], int]:
    """Repeated KeyValue → (dict, how many were dropped over the limit)."""
    max_attributes = limits.max_attributes
    if len(key_values) > max_attributes:
        return _attributes_over_limit_pb(key_values, limits)
    # The hot loop of protobuf ingest. Under the count limit nothing is dropped, so the
    # per-key limit checks are skipped; scalar values are read inline (each call and each
    # message access costs as much as the conversion itself), containers are delegated.
    result: dict[str, Any] = {}
    max_chars = limits.max_value_chars
    for kv in key_values:
        key = kv.key
        if "\x00" in key or len(key) > 1024:
            key = clean_text(key, 1024)
        value = kv.value
        # A non-empty string_value is the oneof's member (the others read as ""): most
        # values are strings, and this spares them the WhichOneof call.
        text = value.string_value
        if text:
            if "\x00" in text or len(text) > max_chars:
                text = clean_text(text, max_chars)
            result[key] = text
            continue
        kind = value.WhichOneof("value")
        if kind == "string_value":
            result[key] = text
        elif kind == "int_value":
            result[key] = value.int_value
        elif kind == "bool_value":
            result[key] = value.bool_value
        else:
            try:
                result[key] = any_value_pb(value, limits)
            except InvalidItem as problem:
                raise InvalidItem(f"attribute {key!r:.80}: {problem}") from None
    return result, 0


def _attributes_over_limit_pb(key_values: Any, limits: DecodeLimits) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    dropped = 0
    max_attributes = limits.max_attributes
    max_chars = limits.max_value_chars
    for kv in key_values:
        key = kv.key
        # Past the limit the GenAI keys are still kept (a fixed set, so still bounded): LLM
        # instrumentations write token counts last, after any number of flattened messages.
        if len(result) >= max_attributes and key not in result and key not in GENAI_KEYS:
            dropped += 1
            continue
        if "\x00" in key or len(key) > 1024:
            key = clean_text(key, 1024)
        value = kv.value
        if value.WhichOneof("value") == "string_value":
            text = value.string_value
            if "\x00" in text or len(text) > max_chars:
                text = clean_text(text, max_chars)
            result[key] = text
        else:
            try:
                result[key] = any_value_pb(value, limits)
            except InvalidItem as problem:
                raise InvalidItem(f"attribute {key!r:.80}: {problem}") from None
    return result, dropped


def resource_pb(message: Any, schema_url: str, limits: DecodeLimits) -> Resource:
    attributes, dropped = attributes_pb(message.attributes, limits)
    return Resource(
        attributes,
        storable_count(message.dropped_attributes_count + dropped),
        clean_text(schema_url, limits.max_value_chars),
    )


def scope_pb(message: Any, schema_url: str, limits: DecodeLimits) -> Scope:
    attributes, _ = attributes_pb(message.attributes, limits)
    return Scope(
        clean_text(message.name, limits.max_value_chars),
        clean_text(message.version, limits.max_value_chars),
        attributes,
        clean_text(schema_url, limits.max_value_chars),
    )


def id_pb(raw: bytes, field: str, size: int, *, required: bool) -> bytes | None:
    if not raw:
        if required:
            raise InvalidItem(f"{field} is missing")
        return None
    if len(raw) != size:
        raise InvalidItem(f"{field} has {len(raw)} bytes; it must have {size}")
    if raw == bytes(size):
        if required:
            raise InvalidItem(f"{field} is all zeros, which the OTLP spec forbids")
        return None
    return raw


# ---------------------------------------------------------------- JSON


def field_json(obj: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    value = obj.get(camel)
    if value is None:
        value = obj.get(snake, default)
    return value


def as_dict(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedPayload(f"{where} must be a JSON array, got {type(value).__name__}")
    return value


def int_json(
    value: Any,
    field: str,
    *,
    default: int = 0,
    minimum: int = _INT64_MIN,
    maximum: int = _UINT64_MAX,
) -> int:
    """int64/uint64/fixed64 as a JSON number or a decimal string, within `minimum..maximum`."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise InvalidItem(f"{field} must be an integer, got a boolean")
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            pass
    if number is None:
        raise InvalidItem(f"{field} must be an integer or a decimal string, got {value!r:.40}")
    if not minimum <= number <= maximum:
        raise InvalidItem(f"{field} {str(number):.40} is out of range ({minimum}..{maximum})")
    return number


def count_json(value: Any, field: str) -> int:
    """A uint32 count (dropped attributes, events, links)."""
    return int_json(value, field, minimum=0, maximum=_UINT32_MAX)


def storable_count(count: int) -> int:
    """Counts are stored as PostgreSQL integer; a uint32 can exceed it, so saturate."""
    return min(count, _INT32_MAX)


def float_json(value: Any, field: str) -> float:
    if isinstance(value, bool):
        raise InvalidItem(f"{field} must be a number, got a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        # proto3 JSON spells special doubles as strings.
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidItem(f"{field} must be a number, got {value!r:.40}")


def enum_json(value: Any, field: str, names: dict[str, int]) -> int:
    """An enum as its number or its name; numbers outside the enum are refused too."""
    if value is None:
        return 0
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        if value in names:
            return names[value]
        if value.isdigit():
            number = int(value)
    if number is not None and number in names.values():
        return number
    raise InvalidItem(f"{field} {value!r:.40} is not a known value")


def enum_pb(number: int, field: str, names: dict[str, int]) -> int:
    # proto3 enums are open: the parser keeps numbers the schema does not know.
    if number not in names.values():
        raise InvalidItem(f"{field} {number} is not a known value")
    return number


def id_json(value: Any, field: str, size: int, *, required: bool) -> bytes | None:
    """Hex id (any case) → bytes. Base64 ids are refused by name, not misread."""
    if value is None or value == "":
        if required:
            raise InvalidItem(f"{field} is missing")
        return None
    if not isinstance(value, str):
        raise InvalidItem(f"{field} must be a hex string")
    if len(value) != size * 2:
        raise InvalidItem(
            f"{field} {value!r:.80} must be {size * 2} hex characters (OTLP JSON encodes ids "
            "as hex, not base64)"
        )
    try:
        raw = binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        raise InvalidItem(
            f"{field} {value!r:.80} is not hex (OTLP JSON encodes ids as hex, not base64)"
        ) from None
    if raw == bytes(size):
        if required:
            raise InvalidItem(f"{field} is all zeros, which the OTLP spec forbids")
        return None
    return raw


def any_value_json(value: Any, limits: DecodeLimits, depth: int = 0) -> Any:
    """An AnyValue as a plain value; `depth` is how many arrays and maps enclose it."""
    if not isinstance(value, dict):
        # Be lenient with senders that put plain JSON values where an AnyValue belongs.
        return value if isinstance(value, (str, int, float, bool)) or value is None else None
    for key, raw in value.items():
        if key in ("stringValue", "string_value"):
            return clean_text(str(raw), limits.max_value_chars)
        if key in ("intValue", "int_value"):
            number = int_json(raw, "intValue")
            if not _INT64_MIN <= number <= _INT64_MAX:
                raise InvalidItem(f"intValue {number} is outside the 64-bit range")
            return number
        if key in ("doubleValue", "double_value"):
            return _finite(float_json(raw, "doubleValue"))
        if key in ("boolValue", "bool_value"):
            return _bool_json(raw)
        if key in _CONTAINER_KEYS and depth >= limits.max_value_depth:
            raise limits.too_deep()
        if key in ("arrayValue", "array_value"):
            items = as_list(as_dict(raw, "arrayValue").get("values"), "arrayValue.values")
            return [any_value_json(item, limits, depth + 1) for item in items]
        if key in ("kvlistValue", "kvlist_value"):
            pairs = as_list(as_dict(raw, "kvlistValue").get("values"), "kvlistValue.values")
            return attributes_json(pairs, limits, depth + 1)[0]
        if key in ("bytesValue", "bytes_value"):
            return clean_text(str(raw), limits.max_value_chars)
    return None


_CONTAINER_KEYS = ("arrayValue", "array_value", "kvlistValue", "kvlist_value")


def _bool_json(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    # `bool("false")` is True: a quoted boolean must not flip.
    if isinstance(raw, str) and raw in ("true", "false"):
        return raw == "true"
    raise InvalidItem(f"boolValue must be true or false, got {raw!r:.40}")


def attributes_json(
    key_values: Any, limits: DecodeLimits, depth: int = 0
) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    dropped = 0
    for kv in as_list(key_values, "attributes"):
        if not isinstance(kv, dict):
            raise InvalidItem("each attribute must be an object with key and value")
        key = kv.get("key")
        if not isinstance(key, str):
            raise InvalidItem("attribute key must be a string")
        if len(result) >= limits.max_attributes and key not in result and key not in GENAI_KEYS:
            dropped += 1
            continue
        try:
            result[clean_text(key, 1024)] = any_value_json(kv.get("value"), limits, depth)
        except InvalidItem as problem:
            if depth:
                raise
            raise InvalidItem(f"attribute {key!r:.80}: {problem}") from None
    return result, dropped


def resource_json(obj: Any, schema_url: str, limits: DecodeLimits) -> Resource:
    resource = as_dict(obj, "resource")
    attributes, dropped = attributes_json(resource.get("attributes"), limits)
    declared = count_json(
        field_json(resource, "droppedAttributesCount", "dropped_attributes_count"),
        "droppedAttributesCount",
    )
    return Resource(
        attributes,
        storable_count(declared + dropped),
        clean_text(str(schema_url or ""), limits.max_value_chars),
    )


def scope_json(obj: Any, schema_url: str, limits: DecodeLimits) -> Scope:
    scope = as_dict(obj, "scope")
    attributes, _ = attributes_json(scope.get("attributes"), limits)
    return Scope(
        clean_text(str(scope.get("name") or ""), limits.max_value_chars),
        clean_text(str(scope.get("version") or ""), limits.max_value_chars),
        attributes,
        clean_text(str(schema_url or ""), limits.max_value_chars),
    )


def _finite(number: float) -> float | str:
    # jsonb cannot store NaN or infinities; keep them readable as proto3 JSON spells them.
    if math.isfinite(number):
        return number
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
