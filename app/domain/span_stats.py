"""Span statistics of one group and the values read from them, defined once.

The dashboards (app/query/dashboard.py) and span alert rules (app/query/span_samples.py)
both reduce a group of spans - one rollup key, one dashboard step, one rule group - to a
`SpanStats` and read their numbers from it, so "error rate" or "p95" means the same
everywhere:

- rate: spans per second over the window asked for;
- error_rate: spans with status error / spans; None for an empty group;
- avg of duration_ms: the mean duration, rounded to the microsecond as dashboards show it;
- p50..p99: the DDSketch quantile of the merged sketch (app/domain/sketch.py), rounded
  the same way; never an average of per-minute percentiles;
- sum / avg of a token or cost field: a span without the field counts as 0, so avg is per
  span of the group (filter on category "llm" to average over model calls). The rollups
  keep no token or cost for request rows, which is why callers read those fields only
  over LLM and tool spans from rollups. `total_tokens` is input + output.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TypeVar

from app.domain import sketch
from app.domain.alert_rules import SPAN_PERCENTILES

LATENCY_DECIMALS = 3  # milliseconds to the microsecond
K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class SpanStats:
    count: int = 0
    errors: int = 0
    duration_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    sketch: dict[int, int] = field(default_factory=dict)

    def add(self, other: SpanStats) -> None:
        self.count += other.count
        self.errors += other.errors
        self.duration_ms += other.duration_ms
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cost_usd += other.cost_usd
        sketch.merge(self.sketch, other.sketch)

    def rate(self, window_s: float) -> float:
        return self.count / window_s if window_s else 0.0

    def error_rate(self) -> float | None:
        return self.errors / self.count if self.count else None

    def avg_duration_ms(self) -> float | None:
        return round(self.duration_ms / self.count, LATENCY_DECIMALS) if self.count else None

    def percentile(self, q: float) -> float | None:
        value = sketch.quantile(self.sketch, q)
        return None if value is None else round(value, LATENCY_DECIMALS)

    def total(self, name: str) -> float:
        """The sum of a token or cost field over the group."""
        if name == "total_tokens":
            return float(self.input_tokens + self.output_tokens)
        if name in ("input_tokens", "output_tokens", "cache_read_tokens", "cost_usd"):
            return float(getattr(self, name))
        raise ValueError(f"{name!r} is not a token or cost field")

    def value(self, aggregation: str, field_name: str | None, window_s: float) -> float | None:
        """A rule aggregation's value, or None when the group has none (no NaN, ever)."""
        if aggregation == "count":
            return float(self.count)
        if aggregation == "rate":
            return self.rate(window_s)
        if aggregation == "error_count":
            return float(self.errors)
        if aggregation == "error_rate":
            return self.error_rate()
        if aggregation in SPAN_PERCENTILES:
            return self.percentile(SPAN_PERCENTILES[aggregation])
        if aggregation == "avg":
            if field_name in (None, "duration_ms"):
                return self.avg_duration_ms()
            return self.total(field_name) / self.count if self.count else None
        if aggregation == "sum" and field_name is not None:
            return self.total(field_name)
        raise ValueError(f"{aggregation!r} is not a span statistic")


def add_to(groups: dict[K, SpanStats], key: K, stats: SpanStats) -> None:
    """Merge `stats` into the group `key` (taking it over when the group is new)."""
    total = groups.get(key)
    if total is None:
        groups[key] = stats
    else:
        total.add(stats)
