"""Dashboards against a deterministic dataset sent through the real ingest path."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

# Prices the built-in table holds (USD per million tokens): input, cached input, output.
GPT_4O = (2.5, 1.25, 10.0)
CLAUDE_SONNET_4 = (3.0, 0.3, 15.0)


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def _close(actual: float, expected: float) -> bool:
    return abs(actual - expected) <= 0.01 * expected + 1e-9


def _span(trace: str, index: int, start: datetime, duration_ms: float, **extra: object) -> dict:
    return {
        "trace_id": trace,
        "span_id": f"{index + 1:016x}",
        "start_time": start.isoformat(),
        "duration_ms": duration_ms,
        **extra,
    }


@pytest.fixture
async def dataset(client: httpx.AsyncClient) -> dict[str, object]:
    """40 requests over the last 30 minutes, with LLM calls and tool runs beneath them."""
    now = datetime.now(UTC)
    spans = []
    request_ms: list[float] = []
    llm_ms: dict[str, list[float]] = {"gpt-4o": [], "claude-sonnet-4-5": []}
    tool_ms: dict[str, list[float]] = {"run_tests": [], "read_file": []}
    tokens = {"input": 0, "output": 0, "cached": 0}
    cost = 0.0
    for turn in range(40):
        trace = uuid.uuid4().hex
        start = now - timedelta(minutes=30) + timedelta(seconds=40 * turn)
        duration = 100.0 + 37.0 * turn + (2500.0 if turn % 10 == 0 else 0.0)
        request_ms.append(duration)
        error = turn % 8 == 0  # 5 of 40
        root = {"name": "POST /chat", "service": "api", "kind": "server"}
        root["status"] = "error" if error else "ok"
        spans.append(_span(trace, 0, start, duration, **root))
        model = "gpt-4o" if turn % 2 else "claude-sonnet-4-5"
        provider = "openai" if turn % 2 else "anthropic"
        input_tokens, output_tokens, cached = 1000 + turn, 100 + turn, 10 * (turn % 3)
        llm_duration = 50.0 + 11.0 * turn
        llm_ms[model].append(llm_duration)
        spans.append(
            _span(
                trace,
                1,
                start + timedelta(milliseconds=5),
                llm_duration,
                name=f"chat {model}",
                service="gateway",
                kind="client",
                parent_span_id=f"{1:016x}",
                status="error" if turn == 7 else "ok",
                attributes={
                    "gen_ai.provider.name": provider,
                    "gen_ai.request.model": model,
                    "gen_ai.usage.input_tokens": input_tokens,
                    "gen_ai.usage.output_tokens": output_tokens,
                    "gen_ai.usage.cache_read.input_tokens": cached,
                },
            )
        )
        tokens["input"] += input_tokens
        tokens["output"] += output_tokens
        tokens["cached"] += cached
        price_in, price_cached, price_out = GPT_4O if model == "gpt-4o" else CLAUDE_SONNET_4
        cost += (
            (input_tokens - cached) * price_in + cached * price_cached + output_tokens * price_out
        ) / 1e6
        tool = "run_tests" if turn % 4 == 0 else "read_file"
        tool_duration = 20.0 + 3.0 * turn
        tool_ms[tool].append(tool_duration)
        spans.append(
            _span(
                trace,
                2,
                start + timedelta(milliseconds=80),
                tool_duration,
                name=f"execute_tool {tool}",
                service="tools",
                parent_span_id=f"{1:016x}",
                status="error" if tool == "run_tests" and turn % 8 == 0 else "ok",
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool},
            )
        )
    response = await client.post("/api/v1/ingest/spans", json={"spans": spans})
    assert response.json() == {"accepted": 120, "rejected": []}
    return {
        "request_ms": request_ms,
        "llm_ms": llm_ms,
        "tool_ms": tool_ms,
        "tokens": tokens,
        "cost": cost,
    }


async def test_overview_exact_counts_and_sketch_percentiles(client, dataset) -> None:
    body = (await client.get("/api/v1/dashboard/overview", params={"window": "1h"})).json()
    request_ms = dataset["request_ms"]
    assert body["requests"] == 40
    assert body["request_rate_per_s"] == pytest.approx(40 / 3600)
    assert body["error_rate"] == pytest.approx(5 / 40)
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert _close(body["latency_ms"][name], _exact(request_ms, q)), name
    assert body["latency_ms"]["avg"] == pytest.approx(sum(request_ms) / 40, abs=1e-3)
    tokens = dataset["tokens"]
    assert body["llm"]["input_tokens"] == tokens["input"]
    assert body["llm"]["output_tokens"] == tokens["output"]
    assert body["llm"]["cache_hit_rate"] == pytest.approx(tokens["cached"] / tokens["input"])
    assert body["llm"]["cost_usd"] == pytest.approx(dataset["cost"], abs=1e-6)
    series = body["timeseries"]
    assert series["step"] == "1m"
    assert 60 <= len(series["requests"]) <= 61
    assert len(series["timestamps"]) == len(series["requests"]) == len(series["p95_ms"])
    assert sum(series["requests"]) == 40 and sum(series["errors"]) == 5
    busy = [i for i, count in enumerate(series["requests"]) if count]
    assert all(series["p95_ms"][i] is not None for i in busy)

    only_tools = (
        await client.get("/api/v1/dashboard/overview", params={"service": "tools"})
    ).json()
    # Tool spans are neither SERVER nor root spans: no requests for that service.
    assert only_tools["requests"] == 0 and only_tools["latency_ms"]["p50"] is None
    day = (await client.get("/api/v1/dashboard/overview", params={"window": "24h"})).json()
    assert day["requests"] == 40 and day["timeseries"]["step"] == "24m"
    short = (await client.get("/api/v1/dashboard/overview", params={"window": "5m"})).json()
    assert short["requests"] < 40


async def test_llm_dashboard_per_model_and_tool(client, dataset) -> None:
    body = (await client.get("/api/v1/dashboard/llm", params={"window": "1h"})).json()
    models = {item["model"]: item for item in body["models"]}
    assert set(models) == {"gpt-4o", "claude-sonnet-4-5"}
    gpt = models["gpt-4o"]
    assert gpt["provider"] == "openai" and gpt["requests"] == 20
    assert gpt["error_rate"] == pytest.approx(1 / 20)  # turn 7
    assert models["claude-sonnet-4-5"]["error_rate"] == 0
    for model, durations in dataset["llm_ms"].items():
        assert _close(models[model]["latency_ms"]["p50"], _exact(durations, 0.5))
        assert _close(models[model]["latency_ms"]["p95"], _exact(durations, 0.95))
    assert sum(item["input_tokens"] for item in body["models"]) == dataset["tokens"]["input"]
    assert sum(item["cost_usd"] for item in body["models"]) == pytest.approx(
        dataset["cost"], abs=1e-5
    )
    tools = {item["tool"]: item for item in body["tools"]}
    assert tools["run_tests"]["executions"] == 10 and tools["read_file"]["executions"] == 30
    assert tools["run_tests"]["error_rate"] == pytest.approx(5 / 10)
    assert _close(
        tools["read_file"]["latency_ms"]["p95"], _exact(dataset["tool_ms"]["read_file"], 0.95)
    )


async def test_dashboard_bad_window_and_isolation(client, collector, make_key, dataset) -> None:
    bad = await client.get("/api/v1/dashboard/overview", params={"window": "forever"})
    assert bad.status_code == 400
    assert "window" in bad.json()["error"]["message"]
    too_long = await client.get("/api/v1/dashboard/llm", params={"window": "90d"})
    assert too_long.status_code == 400
    other = await make_key(f"other-{uuid.uuid4().hex[:6]}", "read")
    async with httpx.AsyncClient(base_url=collector.url, headers={"x-api-key": other}) as http:
        body = (await http.get("/api/v1/dashboard/overview")).json()
        assert body["requests"] == 0 and body["llm"]["input_tokens"] == 0
        assert (await http.get("/api/v1/dashboard/llm")).json()["models"] == []


async def test_llm_timeseries_per_model_adds_up_to_the_llm_dashboard(
    client, dataset, engine, db, project_name
) -> None:
    from app.query.dashboard import llm_timeseries, overview

    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project_name)
    now = datetime.now(UTC)
    series = await llm_timeseries(engine, project_id, window_s=3600, now=now)
    steps = (await overview(engine, project_id, window_s=3600, now=now))["timeseries"]
    assert series["timestamps"] == steps["timestamps"] and series["step"] == steps["step"]
    assert len(steps["p50_ms"]) == len(steps["p95_ms"])
    busy = [i for i, count in enumerate(steps["requests"]) if count]
    assert all(steps["p50_ms"][i] <= steps["p95_ms"][i] for i in busy)
    models = (await client.get("/api/v1/dashboard/llm", params={"window": "1h"})).json()["models"]
    by_model = {item["model"]: item for item in series["models"]}
    assert set(by_model) == {"gpt-4o", "claude-sonnet-4-5"}
    # Most expensive first, as the LLM dashboard orders them.
    assert [item["model"] for item in series["models"]] == [item["model"] for item in models]
    for item in models:
        mine = by_model[item["model"]]
        assert len(mine["input_tokens"]) == len(series["timestamps"])
        assert sum(mine["input_tokens"]) == item["input_tokens"]
        assert sum(mine["output_tokens"]) == item["output_tokens"]
        assert sum(mine["cost_usd"]) == pytest.approx(item["cost_usd"], abs=1e-5)
