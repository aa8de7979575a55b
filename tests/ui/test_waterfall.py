"""The waterfall's layout and critical path, from `get_trace`-shaped documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.ui.waterfall import build

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def span(span_id: str, parent: str | None, start_ms: float, end_ms: float) -> dict[str, Any]:
    return {
        "span_id": span_id,
        "parent_span_id": parent,
        "start_time": (T0 + timedelta(milliseconds=start_ms)).isoformat(),
        "end_time": (T0 + timedelta(milliseconds=end_ms)).isoformat(),
        "duration_ms": end_ms - start_ms,
    }


def trace(*spans: dict[str, Any]) -> dict[str, Any]:
    return {"spans": sorted(spans, key=lambda item: item["start_time"])}


def test_rows_are_depth_first_with_bars_on_one_axis() -> None:
    layout = build(
        trace(
            span("a", None, 0, 100),
            span("b", "a", 10, 40),
            span("c", "b", 15, 30),
            span("d", "a", 50, 90),
        )
    )
    assert [(row.span["span_id"], row.depth) for row in layout.rows] == [
        ("a", 0),
        ("b", 1),
        ("c", 2),
        ("d", 1),
    ]
    assert layout.duration_ms == 100
    d = layout.rows[3]
    assert (d.offset_pct, d.width_pct) == (50, 40)
    assert layout.ticks == [0, 25, 50, 75, 100]


def test_the_critical_path_follows_what_the_end_waited_for() -> None:
    # b and d run in parallel; d ends last, so the root waited on d, not on b. Under d,
    # e ends last; f ended before e started, so the path continues into f as well.
    layout = build(
        trace(
            span("a", None, 0, 100),
            span("b", "a", 5, 60),
            span("d", "a", 10, 95),
            span("f", "d", 12, 40),
            span("e", "d", 45, 90),
            span("g", "d", 13, 20),
        )
    )
    critical = {row.span["span_id"] for row in layout.rows if row.critical}
    assert critical == {"a", "d", "e", "f"}


def test_orphans_become_roots_and_cycles_do_not_loop() -> None:
    layout = build(
        trace(
            span("a", None, 0, 10),
            span("x", "missing", 2, 5),
            span("p", "q", 3, 4),
            span("q", "p", 3, 4),
        )
    )
    assert sorted(row.span["span_id"] for row in layout.rows) == ["a", "p", "q", "x"]
    assert {row.span["span_id"]: row.depth for row in layout.rows}["x"] == 0


def test_a_deep_chain_is_laid_out_without_recursion_limits() -> None:
    spans = [span("s0", None, 0, 5000)]
    spans += [span(f"s{i}", f"s{i - 1}", i, 5000 - i) for i in range(1, 2000)]
    layout = build(trace(*spans))
    assert len(layout.rows) == 2000 and layout.rows[-1].depth == 1999
