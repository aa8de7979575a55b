"""Metric series identity (a stable, project-independent 64-bit id) and metric batches."""

from __future__ import annotations

import hashlib
from typing import Any

from app.domain.metrics import (
    SUM,
    MetricBatch,
    MetricStream,
    canonical_json,
    identity_document,
    series_id_of,
    stream_identity_tail,
)
from app.domain.records import Resource, Scope


def _stream() -> MetricStream:
    return MetricStream(
        name="http.requests",
        type=SUM,
        unit="1",
        description="d",
        temporality=2,
        is_monotonic=True,
        resource=Resource({"service.name": "checkout"}),
        scope=Scope("assistant.meter"),
    )


def test_series_id_is_pinned_signed_64_bit_and_order_independent() -> None:
    stream = _stream()
    identity = series_id_of(stream, {"method": "GET", "route": "/chat"})
    # Pinned: ids are stored in metric_series, so neither the canonical form nor the hash
    # may change between releases.
    canonical = (
        b'{"attributes":{"method":"GET","route":"/chat"},"monotonic":true,'
        b'"name":"http.requests","resource":{"service.name":"checkout"},'
        b'"scope":{"name":"assistant.meter","version":""},"temporality":2,"type":"sum","unit":"1"}'
    )
    reordered = {"route": "/chat", "method": "GET"}
    assert canonical_json(identity_document(stream, reordered)) == canonical
    digest = hashlib.blake2b(canonical, digest_size=8).digest()
    assert identity == int.from_bytes(digest, "big", signed=True) == -8767232860777568469
    assert identity == series_id_of(stream, reordered)
    # The per-stream shortcut the ingest path takes gives the same bytes.
    tail = stream_identity_tail(stream)
    assert b'{"attributes":' + canonical_json(reordered) + tail == canonical


def test_series_id_depends_on_identity_but_not_description() -> None:
    stream, attributes = _stream(), {"method": "GET"}
    base = series_id_of(stream, attributes)
    assert series_id_of(stream, {"method": "POST"}) != base
    changes: list[tuple[str, Any]] = [
        ("name", "other"),
        ("type", "gauge"),
        ("unit", "ms"),
        ("temporality", 1),
        ("is_monotonic", False),
    ]
    for field, value in changes:
        original = getattr(stream, field)
        setattr(stream, field, value)
        assert series_id_of(stream, attributes) != base, field
        setattr(stream, field, original)
    stream.description = "another description"
    assert series_id_of(stream, attributes) == base
    stream.scope.version = "9"
    assert series_id_of(stream, attributes) != base
    stream.scope.version = ""
    stream.resource.attributes = {"service.name": "billing"}
    assert series_id_of(stream, attributes) != base


def test_limit_messages_lead_and_count_all_their_points() -> None:
    batch = MetricBatch(items=[])
    for index in range(6):
        batch.reject(f"bad {index}")
    batch.reject_points("metric 'a' has reached the 3-series limit; 4 points ...", 4)
    assert batch.rejected == 10
    # The grouped message, four single ones, and the two singles not shown.
    assert batch.error_message() == (
        "metric 'a' has reached the 3-series limit; 4 points ...; "
        "bad 0; bad 1; bad 2; bad 3; and 2 more"
    )
    only_grouped = MetricBatch(items=[])
    only_grouped.reject_points("metric 'b' ...", 2)
    assert only_grouped.error_message() == "metric 'b' ..."
