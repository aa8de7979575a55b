"""docs/integrations.md's plain-SDK snippet runs as it stands, and its Collector-in-front
configuration matches what the collector serves.

The SDK snippet runs in a process of its own with the real OpenTelemetry SDK and its
OTLP/HTTP exporters, configured only by the standard OTEL_* variables; what it sent is read
back through the query API. The OpenTelemetry Collector binary is not packaged for Debian or
PyPI, so its configuration is checked for what this collector depends on, and the request its
`otlphttp` exporter makes (gzipped protobuf, the configured header) is sent for real.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from otlp_testkit import decode_export_response, gzip_bytes, simple_span, traces_pb
from support import ROOT, Collector

from app.config import Settings
from app.domain.pricing import PriceTable

DOC = ROOT / "docs" / "integrations.md"
SNIPPET = re.compile(
    r"<!-- (?P<kind>run|config): (?P<name>[\w-]+) -->\n```(?P<lang>\w+)\n(?P<code>.*?)\n```", re.S
)


def _snippet(name: str) -> tuple[str, str]:
    found = {m["name"]: (m["lang"], m["code"]) for m in SNIPPET.finditer(DOC.read_text())}
    assert name in found, sorted(found)
    return found[name]


def _sdk_env(collector: Collector, key: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_EXPORTER_OTLP_HEADERS=f"authorization=Bearer%20{key}",
        OTEL_SERVICE_NAME="support-agent",
    )
    return env


def _run(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The timeout only keeps a hung exporter from hanging the suite.
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_sdk_snippet_sends_spans_logs_and_metrics(
    collector: Collector, key: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    lang, code = _snippet("otel-sdk-http")
    assert lang == "python"
    run = await asyncio.to_thread(_run, code, _sdk_env(collector, key), tmp_path)
    assert run.returncode == 0, run.stderr
    trace_id = run.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id), run.stdout

    trace = await client.get(f"/api/v1/traces/{trace_id}")
    assert trace.status_code == 200, trace.text
    turn, call = trace.json()["spans"]
    assert (turn["name"], turn["service"], turn["parent_span_id"]) == (
        "support turn",
        "support-agent",
        None,
    )
    assert (call["name"], call["kind"], call["parent_span_id"]) == (
        "chat gpt-4o-mini",
        "client",
        turn["span_id"],
    )
    price = PriceTable.builtin().price_for("gpt-4o-mini", "openai")
    assert price is not None
    assert call["gen_ai"]["model"] == "gpt-4o-mini"
    assert (call["gen_ai"]["input_tokens"], call["gen_ai"]["output_tokens"]) == (1200, 300)
    assert call["gen_ai"]["cost_usd"] == pytest.approx(price.cost_usd(1200, 300, 0), rel=1e-9)

    logs = (await client.get("/api/v1/logs", params={"trace_id": trace_id})).json()
    (line,) = logs["logs"]
    assert line["body"] == "answered after one retry"
    assert line["level"] == "warn" and line["span_id"] == turn["span_id"]

    query = {"name": "gen_ai.client.tokens", "agg": "max", "start": "now-10m"}
    tokens = (await client.get("/api/v1/metrics/query", params=query)).json()
    assert tokens["type"] == "sum", tokens
    (series,) = tokens["series"]
    assert series["labels"] == {} and [value for _, value in series["points"]] == [1500]


def test_the_collector_config_points_at_what_the_collector_serves() -> None:
    lang, text = _snippet("otelcol")
    assert lang == "yaml"
    config = yaml.safe_load(text)
    exporter = config["exporters"]["otlphttp/telemetry"]
    assert exporter["endpoint"].endswith(":4318")
    assert exporter["headers"]["authorization"].startswith("Bearer ")
    assert exporter["compression"] == "gzip" and exporter["sending_queue"]["enabled"]
    for signal in ("traces", "logs", "metrics"):
        assert config["service"]["pipelines"][signal]["exporters"] == ["otlphttp/telemetry"]
    # A batch that size stays far inside one group commit and the per-process queue.
    settings = Settings()
    batch = config["processors"]["batch"]["send_batch_size"]
    assert batch * 10 <= settings.writer_max_batch_rows <= settings.writer_max_queued_rows


async def test_what_the_collector_exporter_sends_is_stored(
    collector: Collector, key: str, client: httpx.AsyncClient
) -> None:
    """The `otlphttp` exporter's request: POST {endpoint}/v1/traces, protobuf, gzip, the
    configured header; a 200 with an ExportTraceServiceResponse body."""
    _, text = _snippet("otelcol")
    header = yaml.safe_load(text)["exporters"]["otlphttp/telemetry"]["headers"]["authorization"]
    span = simple_span(name="relayed by a Collector")
    body = gzip_bytes(traces_pb([span], service="edge-agent").SerializeToString())
    async with httpx.AsyncClient(base_url=collector.url) as raw:
        answer = await raw.post(
            "/v1/traces",
            content=body,
            headers={
                "authorization": header.replace("${env:TELEMETRY_INGEST_KEY}", key),
                "content-type": "application/x-protobuf",
                "content-encoding": "gzip",
            },
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-protobuf"
    assert not decode_export_response(answer.content).HasField("partial_success")
    stored = (await client.get(f"/api/v1/traces/{span.trace_id}")).json()
    assert [(s["name"], s["service"]) for s in stored["spans"]] == [
        ("relayed by a Collector", "edge-agent")
    ]
