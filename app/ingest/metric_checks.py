"""The OTLP metrics data model's rules, shared by the protobuf and JSON decoders.

Each check raises `InvalidItem` with a reason the sender can act on; the decoders turn
that into a partial-success rejection of the one point.
"""

from __future__ import annotations

import math
import operator
from itertools import islice
from typing import Any

from app.domain.metrics import FLAG_NO_RECORDED_VALUE, MetricPoint, MetricStream
from app.domain.records import Resource, Scope
from app.ingest.otlp_common import DecodeLimits, InvalidItem, clean_text

NAME_LIMIT = 1024
# Counts are uint64 on the wire but bigint in PostgreSQL; one larger value would fail the
# whole COPY, so it is refused here, point by point.
INT64_MAX = 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
UINT32_MAX = 2**32 - 1
# The exponential histogram scales the OTLP data model defines.
MIN_SCALE, MAX_SCALE = -10, 20


def make_stream(
    name: str,
    kind: str,
    unit: str,
    description: str,
    temporality: int,
    monotonic: bool,
    resource: Resource,
    scope: Scope,
    limits: DecodeLimits,
) -> MetricStream:
    if not name:
        raise InvalidItem("metric name is missing")
    if temporality not in (0, 1, 2):
        raise InvalidItem(
            f"aggregationTemporality {temporality} is not a known value (1 delta, 2 cumulative)"
        )
    return MetricStream(
        name=name,
        type=kind,
        unit=clean_text(unit, NAME_LIMIT),
        description=clean_text(description, limits.max_value_chars),
        temporality=temporality,
        is_monotonic=bool(monotonic),
        resource=resource,
        scope=scope,
    )


def check_times(time: int, start: int, limits: DecodeLimits) -> None:
    if time <= 0:
        raise InvalidItem("timeUnixNano is missing")
    limits.check_time(time, "timeUnixNano")
    if start < 0:
        raise InvalidItem("startTimeUnixNano must not be negative")
    if start > time:
        raise InvalidItem("startTimeUnixNano is after timeUnixNano")


def require_no_recorded_value(record: MetricPoint) -> None:
    # Only a point flagged "no recorded value" (a gap marker) may come without a value.
    if not record.flags & FLAG_NO_RECORDED_VALUE:
        raise InvalidItem("point has no value; send asDouble or asInt")


def check_count(value: int, field: str) -> int:
    if not 0 <= value <= INT64_MAX:
        raise InvalidItem(f"{field} {value} is outside 0..{INT64_MAX}")
    return value


def check_bucket_counts(counts: list[int], field: str) -> None:
    if counts and (min(counts) < 0 or max(counts) > INT64_MAX):
        raise InvalidItem(f"{field} must hold counts between 0 and {INT64_MAX}")


def check_histogram(record: MetricPoint) -> None:
    bounds = record.explicit_bounds or []
    counts = record.bucket_counts or []
    if not (counts or bounds):
        return  # the data model allows a histogram of count and sum only
    if len(counts) != len(bounds) + 1:
        raise InvalidItem(
            f"bucketCounts has {len(counts)} entries but explicitBounds has {len(bounds)}; "
            "send one more count than bounds (or neither)"
        )
    # Pairwise `<` in C: a NaN anywhere fails it, except a lone bound, which equals nothing.
    if (bounds and bounds[0] != bounds[0]) or not all(
        map(operator.lt, bounds, islice(bounds, 1, None))
    ):
        raise InvalidItem("explicitBounds must be strictly increasing numbers")
    check_bucket_counts(counts, "bucketCounts")


def check_exponential(record: MetricPoint) -> None:
    scale = record.scale or 0
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise InvalidItem(f"scale {scale} is outside {MIN_SCALE}..{MAX_SCALE}")
    for side, offset, counts in (
        ("positive", record.positive_offset, record.positive_bucket_counts),
        ("negative", record.negative_offset, record.negative_bucket_counts),
    ):
        if not INT32_MIN <= (offset or 0) <= INT32_MAX:
            raise InvalidItem(f"{side}.offset {offset} is outside the int32 range")
        check_bucket_counts(counts or [], f"{side}.bucketCounts")
    threshold = record.zero_threshold or 0.0
    if math.isnan(threshold) or threshold < 0:
        raise InvalidItem("zeroThreshold must be a non-negative number")


def quantile_records(pairs: list[tuple[float, float]]) -> list[dict[str, Any]]:
    quantiles = []
    for quantile, value in pairs:
        if not 0.0 <= quantile <= 1.0:
            raise InvalidItem(f"quantile {quantile} is outside 0..1")
        quantiles.append({"quantile": quantile, "value": json_double(value)})
    return quantiles


def exemplar_record(
    time_unix_nano: int,
    value: float | int | None,
    trace_id: bytes | None,
    span_id: bytes | None,
    attributes: dict[str, Any],
) -> dict[str, Any]:
    return {
        "time_unix_nano": time_unix_nano,
        "value": json_double(value) if isinstance(value, float) else value,
        "trace_id": trace_id.hex() if trace_id else None,
        "span_id": span_id.hex() if span_id else None,
        "filtered_attributes": attributes,
    }


def json_double(number: float) -> float | str:
    # jsonb cannot hold NaN or infinities; keep them readable as proto3 JSON spells them.
    if math.isfinite(number):
        return number
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")


def describe(name: str, problem: Exception) -> str:
    label = f"metric {name!r:.80}" if name else "metric"
    return f"{label}: {problem}"
