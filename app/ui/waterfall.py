"""The span waterfall of a trace: tree order, depth, bars on one time axis, critical path.

Input is `get_trace`'s answer (spans ordered by start). Rows come in depth-first order,
children by start time; a span whose parent is missing from the trace is shown as a root.
Bars are placed in percent of the trace's duration from its first start.

The critical path is the chain of work the trace's end waited on: from a span's end,
walk back through its children, latest-ending first, taking each child that ended by the
time reached so far (a child ending after its parent counts as ending with it) and
continuing from that child's start; a child still running then overlapped the chosen one
and is not on the path (the method of Jaeger's critical-path view). A span is on it when
any part of it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_DEPTH = 400


@dataclass
class Row:
    span: dict[str, Any]
    depth: int
    offset_pct: float
    width_pct: float
    start_ms: float
    critical: bool = False
    children: int = 0


@dataclass
class Waterfall:
    rows: list[Row]
    duration_ms: float
    ticks: list[float] = field(default_factory=list)

    @property
    def critical_count(self) -> int:
        return sum(1 for row in self.rows if row.critical)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def build(trace: dict[str, Any]) -> Waterfall:
    spans = trace["spans"]
    starts = {span["span_id"]: _time(span["start_time"]) for span in spans}
    ends = {span["span_id"]: _time(span["end_time"]) for span in spans}
    origin = min(starts.values())
    duration_ms = max((max(ends.values()) - origin).total_seconds() * 1000, 0.001)
    by_parent: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span["parent_span_id"]
        if parent not in starts or parent == span["span_id"]:
            parent = None
        by_parent.setdefault(parent, []).append(span)
    for children in by_parent.values():
        children.sort(key=lambda span: (starts[span["span_id"]], span["span_id"]))

    critical: set[str] = set()

    def walk_critical(span_id: str, until: datetime, depth: int = 0) -> None:
        critical.add(span_id)
        if depth > MAX_DEPTH:  # a pathological chain: stop rather than exhaust the stack
            return
        reached = min(ends[span_id], until)
        children = sorted(
            by_parent.get(span_id, []), key=lambda span: ends[span["span_id"]], reverse=True
        )
        for child in children:
            child_id = child["span_id"]
            # A child that ends after its parent counts as ending with it; one still
            # running at `reached` overlapped the chosen child: the parent did not wait on it.
            if min(ends[child_id], ends[span_id]) <= reached and starts[child_id] < reached:
                walk_critical(child_id, reached, depth + 1)
                reached = starts[child_id]

    roots = by_parent.get(None, [])
    if roots:
        last_root = max(roots, key=lambda span: ends[span["span_id"]])
        walk_critical(last_root["span_id"], ends[last_root["span_id"]])

    rows: list[Row] = []
    seen: set[str] = set()
    stack = [(span, 0) for span in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        span_id = span["span_id"]
        if span_id in seen:  # a cycle of parent ids: show each span once
            continue
        seen.add(span_id)
        start_ms = (starts[span_id] - origin).total_seconds() * 1000
        children = by_parent.get(span_id, [])
        rows.append(
            Row(
                span=span,
                depth=depth,
                offset_pct=100 * start_ms / duration_ms,
                width_pct=max(100 * span["duration_ms"] / duration_ms, 0.15),
                start_ms=start_ms,
                critical=span_id in critical,
                children=len(children),
            )
        )
        stack.extend((child, depth + 1) for child in reversed(children))
    # Spans only reachable through a cycle: listed at the end, flat.
    for span in spans:
        if span["span_id"] not in seen:
            seen.add(span["span_id"])
            start_ms = (starts[span["span_id"]] - origin).total_seconds() * 1000
            rows.append(Row(span, 0, 100 * start_ms / duration_ms, 0.15, start_ms, critical=False))
    return Waterfall(rows, duration_ms, [duration_ms * step / 4 for step in range(5)])
