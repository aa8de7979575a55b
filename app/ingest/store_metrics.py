"""Decoded metric points to committed rows: redaction, series ids and limit, then the writer."""

from __future__ import annotations

from app.domain.metrics import (
    MetricBatch,
    MetricPoint,
    canonical_json,
    series_id,
    stream_identity_tail,
)
from app.ingest.enrich import Enricher
from app.ingest.metric_rows import metric_point_rows_steps
from app.ingest.offload import Runner, Steps, drive, inline, sliced
from app.ingest.series import NewSeries, SeriesRegistry
from app.ingest.writer import GroupCommitWriter


async def store_metric_points(
    writer: GroupCommitWriter,
    enricher: Enricher,
    registry: SeriesRegistry,
    project_id: int,
    batch: MetricBatch,
    run: Runner = inline,
) -> set[int]:
    """Store `batch.items`; points of series refused by the limit move to `batch.rejected`.

    Returns the refused series ids once the points are committed; raises the writer's
    errors (and `DatabaseUnavailable` from series registration) otherwise. `run` runs the
    CPU-bound parts (redaction, series identities, rows): with an `Offload`, in slices on
    the event loop (see `app/ingest/offload.py`).
    """
    points: list[MetricPoint] = batch.items
    if not points:
        return set()
    candidates = await sliced(run, _redact_and_assign(enricher, registry, project_id, points))
    refused = await registry.admit(project_id, candidates) if candidates else set()
    if refused:
        points = _reject_refused(batch, points, refused, registry.max_series_per_metric)
    await writer.write([await sliced(run, metric_point_rows_steps(project_id, points))])
    return refused


# Points redacted, or given their series, between two pauses of the steps below.
POINTS_PER_STEP = 64


def _redact_and_assign(
    enricher: Enricher, registry: SeriesRegistry, project_id: int, points: list[MetricPoint]
) -> Steps[dict[int, NewSeries]]:
    seen_resources: set[int] = set()
    for start in range(0, len(points), POINTS_PER_STEP):
        redact(enricher, points[start : start + POINTS_PER_STEP], seen_resources)
        yield
    return (yield from assign_series_steps(registry, project_id, points))


def redact(enricher: Enricher, points: list[MetricPoint], seen_resources: set[int]) -> None:
    """Redact before hashing, so a secret never reaches `metric_series` nor its identity;
    each resource once (`seen_resources` holds the ids of those done)."""
    for point in points:
        resource = point.stream.resource
        if id(resource) not in seen_resources:
            seen_resources.add(id(resource))
            enricher.resource(resource)
        point.attributes = enricher.redact(point.attributes)
        for exemplar in point.exemplars:
            exemplar["filtered_attributes"] = enricher.redact(exemplar["filtered_attributes"])


def assign_series(
    registry: SeriesRegistry, project_id: int, points: list[MetricPoint]
) -> dict[int, NewSeries]:
    """Set each point's `series_id`; return the series this process does not know yet.

    Points of one stream share its serialised identity tail, and repeated attribute sets
    (the usual case: one series, several points or several exports) are hashed once.
    """
    return drive(assign_series_steps(registry, project_id, points))


def assign_series_steps(
    registry: SeriesRegistry, project_id: int, points: list[MetricPoint]
) -> Steps[dict[int, NewSeries]]:
    """`assign_series` as sliced steps."""
    tails: dict[int, bytes] = {}
    ids: dict[tuple[bytes, bytes], int] = {}
    candidates: dict[int, NewSeries] = {}
    for number, point in enumerate(points, 1):
        if not number % POINTS_PER_STEP:
            yield
        stream = point.stream
        tail = tails.get(id(stream))
        if tail is None:
            tail = tails[id(stream)] = stream_identity_tail(stream)
        attributes_json = canonical_json(point.attributes)
        key = (tail, attributes_json)
        point_series = ids.get(key)
        if point_series is None:
            point_series = ids[key] = series_id(tail, attributes_json)
            if not registry.is_known(project_id, point_series):
                candidates[point_series] = NewSeries(point_series, stream, point.attributes)
        point.series_id = point_series
    return candidates


def _reject_refused(
    batch: MetricBatch, points: list[MetricPoint], refused: set[int], limit: int
) -> list[MetricPoint]:
    kept: list[MetricPoint] = []
    refused_by_name: dict[str, int] = {}
    for point in points:
        if point.series_id in refused:
            name = point.stream.name
            refused_by_name[name] = refused_by_name.get(name, 0) + 1
        else:
            kept.append(point)
    for name, count in refused_by_name.items():
        noun = "point" if count == 1 else "points"
        batch.reject_points(
            f"metric {name!r:.200} has reached the {limit}-series limit; "
            f"{count} {noun} of new series rejected",
            count,
        )
    batch.items = kept
    return kept
