"""The span rules' test world: conversation turns sent through ingest, and an oracle.

`NOW` is a minute boundary two minutes back; the rules' 5-minute window is (NOW - 5m,
NOW] and the 30 turns start inside it, off any minute boundary, so the rollup path and
the raw path read the same spans. `expected` computes the rule aggregations in plain
Python over the stored rows (`SELECT * FROM spans`); percentiles from a sketch built in
Python (and checked within 1% of the exact value).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from otlp_testkit import SpanSpec, attributes_json, span_json
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain import sketch
from app.domain.alert_rules import RuleQuery, parse_rule
from app.query.span_samples import rollup_category, span_samples

WINDOW_S = 300
Row = dict[str, Any]


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


NOW = _minute(datetime.now(UTC)) - timedelta(minutes=2)
MODELS = {"gpt-4o": "openai", "claude-sonnet-4-5": "anthropic"}


def rule_query(aggregation: str, **rest: Any) -> RuleQuery:
    """A spans rule's validated query (window 5m unless given)."""
    body: dict[str, Any] = {
        "name": "rule",
        "signal": "spans",
        "query": {"aggregation": aggregation, "window": "5m", **rest},
    }
    if aggregation != "absent":
        body["condition"] = {"op": ">", "threshold": 0}
    return parse_rule(body).query


def _span(trace: str, index: int, start: datetime, duration_ms: float, **extra: Any) -> dict:
    return {
        "trace_id": trace,
        "span_id": f"{index + 1:016x}",
        "start_time": start.isoformat(),
        "duration_ms": duration_ms,
        **extra,
    }


def turns(now: datetime, count: int = 30, first_s: float = -295.0) -> list[dict]:
    """Conversation turns every 10 s: a request, an LLM call and a tool run each."""
    spans = []
    for turn in range(count):
        trace = uuid.uuid4().hex
        start = now + timedelta(seconds=first_s + 10 * turn)
        user = f"user-{turn % 3}"
        spans.append(
            _span(trace, 0, start, 100.0 + 37.0 * turn, name="POST /chat", service="api",
                  kind="server", status="error" if turn % 5 == 0 else "ok",
                  attributes={"user.id": user, "http.status_code": 500 if turn % 5 == 0 else 200})
        )  # fmt: skip
        model = "gpt-4o" if turn % 2 else "claude-sonnet-4-5"
        spans.append(
            _span(trace, 1, start + timedelta(milliseconds=5), 50.0 + 11.0 * turn,
                  name=f"chat {model}", service="gateway", kind="client",
                  parent_span_id=f"{1:016x}",
                  status="error" if turn == 7 else "ok",
                  attributes={
                      "gen_ai.operation.name": "chat",
                      "gen_ai.provider.name": MODELS[model],
                      "gen_ai.request.model": model,
                      "gen_ai.usage.input_tokens": 1000 + turn,
                      "gen_ai.usage.output_tokens": 100 + turn,
                      "gen_ai.usage.cache_read.input_tokens": 10 * (turn % 3),
                      "user.id": user,
                  })
        )  # fmt: skip
        tool = "run_tests" if turn % 4 == 0 else "read_file"
        spans.append(
            _span(trace, 2, start + timedelta(milliseconds=80), 20.0 + 3.0 * turn,
                  name=f"execute_tool {tool}", service="tools", parent_span_id=f"{1:016x}",
                  status="error" if tool == "run_tests" and turn % 8 == 0 else "ok",
                  attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool})
        )  # fmt: skip
    return spans


def worker_spans(now: datetime) -> dict[str, Any]:
    """OTLP JSON from a service whose resource carries `user.id` and an environment."""
    base = int((now - timedelta(seconds=100)).timestamp()) * 10**9 + 250_000_000
    specs = [
        SpanSpec(uuid.uuid4().hex, f"{n + 1:016x}", "nightly-job", base + n * 10**9,
                 base + n * 10**9 + (n + 1) * 40_000_000, attributes=attributes)
        for n, attributes in enumerate(({}, {}, {"user.id": "user-span"}))
    ]  # fmt: skip
    resource = {
        "service.name": "batch-worker",
        "deployment.environment.name": "staging",
        "user.id": "user-res",
    }
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attributes_json(resource)},
                "scopeSpans": [{"scope": {"name": "t"}, "spans": [span_json(s) for s in specs]}],
            }
        ]
    }


async def send(client: httpx.AsyncClient, now: datetime) -> None:
    every = turns(now)
    # Two posts (and a third from OTLP): several uncompacted rollup rows per minute and key.
    for part in (every[:45], every[45:]):
        response = await client.post("/api/v1/ingest/spans", json={"spans": part})
        assert response.json()["rejected"] == [], response.text
    assert (await client.post("/v1/traces", json=worker_spans(now))).status_code == 200
    # Outside the window: seen in the day before it, for absent with group_by.
    old = [
        _span(uuid.uuid4().hex, 0, now - timedelta(minutes=30), 12.0, name="GET /old",
              service="old-svc", kind="server"),
        _span(uuid.uuid4().hex, 0, now - timedelta(minutes=40), 30.0, name="chat gpt-4o",
              service="gateway", kind="client", parent_span_id=f"{9:016x}",
              attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 5,
                          "user.id": "user-gone"}),
    ]  # fmt: skip
    response = await client.post("/api/v1/ingest/spans", json={"spans": old})
    assert response.json()["rejected"] == [], response.text


@dataclass
class World:
    engine: AsyncEngine
    project_id: int
    rows: list[Row]

    async def samples(self, query: RuleQuery, now: datetime = NOW, source: str = "auto") -> dict:
        async with self.engine.connect() as connection:
            found = await span_samples(connection, self.project_id, query, now, source=source)
        return {tuple(sorted(sample.labels.items())): sample.value for sample in found}

    async def both(self, query: RuleQuery, now: datetime = NOW) -> dict:
        """The rule's samples, checked equal on the rollup and the raw path."""
        assert rollup_category(query) is not None
        raw = await self.samples(query, now, "spans")
        rolled = await self.samples(query, now, "rollups")
        assert raw.keys() == rolled.keys()
        for key, value in raw.items():
            assert rolled[key] == pytest.approx(value, rel=1e-12), key
        return rolled

    def spans(self, keep: Callable[[Row], bool], now: datetime = NOW) -> list:
        start = now - timedelta(seconds=WINDOW_S)
        return [row for row in self.rows if start < row["start_time"] <= now and keep(row)]


def is_request(row: Row) -> bool:
    return row["kind"] == 2 or row["parent_span_id"] is None


def is_llm(row: Row) -> bool:
    return row["gen_ai_tool_name"] is None and (
        row["gen_ai_model"] is not None or row["gen_ai_input_tokens"] is not None
    )


def is_tool(row: Row) -> bool:
    return row["gen_ai_tool_name"] is not None


def quantile(rows: list, q: float) -> float:
    buckets: dict[int, int] = {}
    for row in rows:
        sketch.add(buckets, row["duration_ns"] / 1_000_000)
    return round(sketch.quantile(buckets, q), 3)


def exact(rows: list, q: float) -> float:
    ordered = sorted(row["duration_ns"] / 1e6 for row in rows)
    return ordered[math.floor(q * (len(ordered) - 1))]


def expected(rows: list, aggregation: str, field: str | None = None) -> float | None:
    """The oracle: the rule aggregations straight from stored rows."""
    count = len(rows)
    durations = [row["duration_ns"] / 1e6 for row in rows]

    def total(name: str) -> float:
        if name == "total_tokens":
            return total("input_tokens") + total("output_tokens")
        column = "cost_usd" if name == "cost_usd" else f"gen_ai_{name}"
        return float(sum(row[column] or 0 for row in rows))

    errors = sum(1 for row in rows if row["status_code"] == 2)
    if aggregation == "count":
        return float(count)
    if aggregation == "rate":
        return count / WINDOW_S
    if aggregation == "error_count":
        return float(errors)
    if not count:
        return None if aggregation != "sum" else total(field)
    if aggregation == "error_rate":
        return errors / count
    if aggregation == "avg":
        return round(sum(durations) / count, 3) if field == "duration_ms" else total(field) / count
    if aggregation == "sum":
        return total(field)
    q = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}[aggregation]
    assert abs(quantile(rows, q) - exact(rows, q)) <= 0.01 * exact(rows, q)
    return quantile(rows, q)


def grouped(rows: list, key: Callable[[Any], str], aggregation: str, field=None) -> dict:
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    found = {}
    for name, members in groups.items():
        value = expected(members, aggregation, field)
        if value is not None:
            found[name] = value
    return found
