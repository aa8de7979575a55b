"""Metric point records (five OTLP kinds) and the stable, project-independent series identity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.domain.records import DecodedBatch, Resource, Scope

# Metric `type` values, as API.md names them.
GAUGE = "gauge"
SUM = "sum"
HISTOGRAM = "histogram"
EXPONENTIAL_HISTOGRAM = "exponential_histogram"
SUMMARY = "summary"
METRIC_TYPES = (GAUGE, SUM, HISTOGRAM, EXPONENTIAL_HISTOGRAM, SUMMARY)

# Aggregation temporality, numbered as in the OTLP protobuf enum.
TEMPORALITY_UNSPECIFIED = 0
TEMPORALITY_DELTA = 1
TEMPORALITY_CUMULATIVE = 2

# DataPointFlags: the point marks a gap (e.g. a staleness marker) and carries no value.
FLAG_NO_RECORDED_VALUE = 1


@dataclass(slots=True)
class MetricStream:
    """One metric of one scope and resource; every point of it shares this object.

    Everything here except `description` is part of the series identity.
    """

    name: str
    type: str
    unit: str
    description: str
    temporality: int
    is_monotonic: bool
    resource: Resource
    scope: Scope


@dataclass(slots=True)
class MetricPoint:
    """One data point as stored. Times are Unix nanoseconds; `start_time_unix_nano` 0 = none.

    Only the fields of the point's kind are set; the rest stay None, as in `metric_points`.
    `series_id` is filled at store time, after redaction, from `stream` and `attributes`.
    """

    stream: MetricStream
    attributes: dict[str, Any]
    time_unix_nano: int
    start_time_unix_nano: int = 0
    flags: int = 0
    value: float | None = None
    count: int | None = None
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    explicit_bounds: list[float] | None = None
    bucket_counts: list[int] | None = None
    scale: int | None = None
    zero_count: int | None = None
    zero_threshold: float | None = None
    positive_offset: int | None = None
    positive_bucket_counts: list[int] | None = None
    negative_offset: int | None = None
    negative_bucket_counts: list[int] | None = None
    quantiles: list[dict[str, Any]] | None = None
    exemplars: list[dict[str, Any]] = field(default_factory=list)
    series_id: int = 0


@dataclass(slots=True)
class MetricBatch(DecodedBatch):
    """A decoded batch that can also reject many points under one message.

    Series-limit refusals are one message per metric name however many points they
    cover; they lead the answer, as they are what a sender most needs to act on.
    """

    grouped: list[tuple[str, int]] = field(default_factory=list)

    def reject_points(self, message: str, count: int) -> None:
        self.rejected += count
        self.grouped.append((message, count))

    def error_message(self) -> str:
        if not self.rejected:
            return ""
        grouped = self.grouped[: self.MAX_MESSAGES]
        single = self.messages[: self.MAX_MESSAGES - len(grouped)]
        shown = "; ".join([message for message, _ in grouped] + single)
        hidden = self.rejected - sum(count for _, count in grouped) - len(single)
        return f"{shown}; and {hidden} more" if hidden > 0 else shown


def identity_document(stream: MetricStream, attributes: dict[str, Any]) -> dict[str, Any]:
    """The series identity as a plain document; its canonical JSON is what gets hashed.

    The project is deliberately absent: the same stream sent to two projects has the same
    id, and `metric_series` is keyed by (project_id, series_id).
    """
    return {
        "attributes": attributes,
        "monotonic": stream.is_monotonic,
        "name": stream.name,
        "resource": stream.resource.attributes,
        "scope": {"name": stream.scope.name, "version": stream.scope.version},
        "temporality": stream.temporality,
        "type": stream.type,
        "unit": stream.unit,
    }


def canonical_json(document: Any) -> bytes:
    """Compact JSON with every object's keys sorted, so equal documents give equal bytes."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def stream_identity_tail(stream: MetricStream) -> bytes:
    """The part of the canonical identity after `attributes`, shared by all points of a stream.

    "attributes" sorts first among the identity keys, so the canonical JSON of a point is
    `{"attributes":<attributes>,` + this tail: serialising the stream once per request and
    only the point attributes per point gives the same bytes as `identity_document`.
    """
    document = identity_document(stream, {})
    del document["attributes"]
    return b"," + canonical_json(document)[1:]


def series_id(tail: bytes, attributes_json: bytes) -> int:
    """Signed 64-bit id (a PostgreSQL bigint) from blake2b over the canonical identity."""
    digest = hashlib.blake2b(b'{"attributes":' + attributes_json + tail, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def series_id_of(stream: MetricStream, attributes: dict[str, Any]) -> int:
    """Convenience form of `series_id` for one point (tests, native ingest)."""
    return series_id(stream_identity_tail(stream), canonical_json(attributes))
