"""The LLM instrumentation libraries, for real, fill the same GenAI columns (docs/integrations.md).

Each snippet of docs/integrations.md runs as it stands, in a process of its own (an
instrumentation patches the `openai` module for the whole process): the real `openai` client,
wrapped by the real OpenInference, OpenLLMetry or OpenTelemetry instrumentation, talks to a
local OpenAI-compatible server (tests/llm_kit.py) and exports through the real OpenTelemetry
SDK over OTLP/HTTP to the collector. What was stored is read back through the trace API and
the LLM dashboard.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from llm_kit import ANSWER, TOOL_CALL_ID, USAGE, FakeOpenAI, fake_openai, served_model
from support import ROOT, Collector

from app.domain.pricing import PriceTable

DOC = ROOT / "docs" / "integrations.md"
SNIPPET = re.compile(r"<!-- run: (?P<name>[\w-]+) -->\n```(?P<lang>\w+)\n(?P<code>.*?)\n```", re.S)
MODEL = served_model("gpt-4o-mini")
# The order the snippets make their spans in; the trace API answers in start order.
CALLS = ("text", "tool_call", "stream")


@dataclass(frozen=True)
class Library:
    snippet: str
    # Keys the library's model-call spans carry, and keys they must not (so the test shows
    # which convention was read, not only that something was).
    model_call_has: frozenset[str]
    model_call_lacks: frozenset[str] = frozenset()
    tool_has: frozenset[str] = frozenset()
    reports_cache_reads: bool = True
    root_operation: str | None = None
    env: dict[str, str] = field(default_factory=dict)


LIBRARIES = {
    "openinference": Library(
        "openinference",
        model_call_has=frozenset(
            {"openinference.span.kind", "llm.model_name", "llm.system", "llm.token_count.prompt"}
        ),
        model_call_lacks=frozenset({"gen_ai.usage.input_tokens", "gen_ai.provider.name"}),
        tool_has=frozenset({"openinference.span.kind", "tool.name"}),
        root_operation="invoke_agent",
    ),
    # OpenInference writing GenAI's names too: one span, two conventions.
    "openinference with genai": Library(
        "openinference",
        model_call_has=frozenset({"llm.token_count.prompt", "gen_ai.usage.input_tokens"}),
        tool_has=frozenset({"tool.name", "gen_ai.tool.name"}),
        root_operation="invoke_agent",
        env={"OPENINFERENCE_ENABLE_GENAI_SEMCONV": "true"},
    ),
    "openllmetry": Library(
        "openllmetry",
        model_call_has=frozenset(
            {
                "gen_ai.system",
                "llm.request.type",
                "llm.usage.total_tokens",
                "gen_ai.usage.cache_read_input_tokens",
            }
        ),
        model_call_lacks=frozenset(
            {
                "gen_ai.provider.name",
                "gen_ai.operation.name",
                "gen_ai.usage.cache_read.input_tokens",
            }
        ),
        tool_has=frozenset({"traceloop.span.kind", "traceloop.entity.name"}),
    ),
    "openai-v2": Library(
        "openai-v2",
        model_call_has=frozenset(
            {"gen_ai.provider.name", "gen_ai.operation.name", "gen_ai.usage.input_tokens"}
        ),
        tool_has=frozenset({"gen_ai.tool.name"}),
        # 2.4b0 reads cached tokens for the Responses API only.
        reports_cache_reads=False,
        root_operation=None,
    ),
}


def _snippets() -> dict[str, tuple[str, str]]:
    found = {m["name"]: (m["lang"], m["code"]) for m in SNIPPET.finditer(DOC.read_text())}
    assert set(found) >= {"openinference", "openllmetry", "openai-v2", "native"}, sorted(found)
    return found


def _clean_env(**extra: str) -> dict[str, str]:
    prefixes = ("OTEL_", "OPENAI_", "OPENINFERENCE_", "TRACELOOP_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}
    env.update(extra)
    return env


def _run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The timeout only keeps a hung exporter from hanging the suite.
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )


def _expected_model_call(kind: str, cache_reads: bool) -> dict[str, Any]:
    """The `gen_ai` columns of one call, its cost computed from the built-in price table."""
    usage = USAGE[kind]
    cached = usage.cached_tokens if cache_reads else None
    price = PriceTable.builtin().price_for(MODEL, "openai")
    assert price is not None and "gpt-4o-mini" in price.pattern
    return {
        "provider": "openai",
        "model": MODEL,
        "operation": "chat",
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": cached,
        "tool_name": None,
        "cost_usd": price.cost_usd(usage.prompt_tokens, usage.completion_tokens, cached or 0),
    }


def _check_requests(fake: FakeOpenAI) -> None:
    """The client really made the three calls the snippet describes."""
    hello, tool_call, streamed = fake.requests
    assert "tools" not in hello and not hello.get("stream")
    assert tool_call["tools"][0]["function"]["name"] == "get_weather"
    assert streamed["stream"] is True and streamed["stream_options"] == {"include_usage": True}
    assert streamed["messages"][-1] == {
        "role": "tool",
        "tool_call_id": TOOL_CALL_ID,
        "content": "Sunny in Paris",
    }


@pytest.mark.parametrize("name", list(LIBRARIES))
async def test_library_fills_the_genai_columns(
    collector: Collector,
    key: str,
    client: httpx.AsyncClient,
    db: asyncpg.Connection,
    project_name: str,
    tmp_path: Path,
    name: str,
) -> None:
    library = LIBRARIES[name]
    lang, code = _snippets()[library.snippet]
    assert lang == "python"
    with fake_openai() as fake:
        env = _clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
            OTEL_EXPORTER_OTLP_HEADERS=f"authorization=Bearer%20{key}",
            OTEL_SERVICE_NAME="support-agent",
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=fake.url,
            **library.env,
        )
        run = await asyncio.to_thread(_run, [sys.executable, "-c", code], env, tmp_path)
    assert run.returncode == 0, run.stderr
    answer, trace_id = run.stdout.strip().splitlines()[-2:]
    assert answer == ANSWER
    _check_requests(fake)

    response = await client.get(f"/api/v1/traces/{trace_id}")
    assert response.status_code == 200, response.text
    root, hello, tool_call, tool, streamed = response.json()["spans"]
    assert root["name"] == "support turn" and root["parent_span_id"] is None
    assert {span["parent_span_id"] for span in (hello, tool_call, tool, streamed)} == {
        root["span_id"]
    }
    assert root["gen_ai"] is None
    for span, kind in zip((hello, tool_call, streamed), CALLS, strict=True):
        expected = _expected_model_call(kind, library.reports_cache_reads)
        expected["cost_usd"] = pytest.approx(expected["cost_usd"], rel=1e-9)
        assert span["gen_ai"] == expected, kind
        assert library.model_call_has <= set(span["attributes"]), kind
        assert not library.model_call_lacks & set(span["attributes"]), kind
    assert tool["gen_ai"] == {
        "provider": None,
        "model": None,
        "operation": "execute_tool",
        "input_tokens": None,
        "output_tokens": None,
        "cache_read_input_tokens": None,
        "tool_name": "get_weather",
        "cost_usd": None,
    }
    assert library.tool_has <= set(tool["attributes"])
    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project_name)
    root_operation = await db.fetchval(
        "SELECT gen_ai_operation FROM spans WHERE project_id = $1 AND span_id = $2",
        project_id,
        bytes.fromhex(root["span_id"]),
    )
    assert root_operation == library.root_operation

    dashboard = (await client.get("/api/v1/dashboard/llm", params={"window": "1h"})).json()
    calls = [_expected_model_call(kind, library.reports_cache_reads) for kind in CALLS]
    (model_row,) = dashboard["models"]
    (tool_row,) = dashboard["tools"]
    input_tokens = sum(call["input_tokens"] for call in calls)
    cache_read_tokens = sum(call["cache_read_input_tokens"] or 0 for call in calls)
    assert {k: v for k, v in model_row.items() if k not in ("latency_ms", "cost_usd")} == {
        "model": MODEL,
        "provider": "openai",
        "requests": 3,
        "error_rate": 0.0,
        "input_tokens": input_tokens,
        "output_tokens": sum(call["output_tokens"] for call in calls),
        "cache_read_tokens": cache_read_tokens,
        "cache_hit_rate": pytest.approx(cache_read_tokens / input_tokens),
    }
    assert model_row["cost_usd"] == pytest.approx(sum(call["cost_usd"] for call in calls), abs=1e-6)
    assert (tool_row["tool"], tool_row["executions"], tool_row["error_rate"]) == (
        "get_weather",
        1,
        0.0,
    )


async def test_native_snippet(
    collector: Collector, key: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    lang, code = _snippets()["native"]
    assert lang == "sh"
    env = _clean_env(COLLECTOR=collector.url, KEY=key)
    run = await asyncio.to_thread(_run, ["bash", "-euc", code], env, tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"accepted": 3, "rejected": []}

    trace = (await client.get("/api/v1/traces/4bf92f3577b34da6a3ce929d0e0e4736")).json()
    root, chat, tool = trace["spans"]
    assert root["gen_ai"] is None
    price = PriceTable.builtin().price_for("claude-sonnet-4-5", "anthropic")
    assert price is not None
    assert chat["gen_ai"] == {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "operation": "chat",
        "input_tokens": 5200,
        "output_tokens": 410,
        "cache_read_input_tokens": 4096,
        "tool_name": None,
        "cost_usd": pytest.approx(price.cost_usd(5200, 410, 4096), rel=1e-9),
    }
    assert (tool["gen_ai"]["tool_name"], tool["status"]) == ("run_tests", "error")
    dashboard = (await client.get("/api/v1/dashboard/llm", params={"window": "1h"})).json()
    assert [(row["tool"], row["executions"], row["error_rate"]) for row in dashboard["tools"]] == [
        ("run_tests", 1, 1.0)
    ]
