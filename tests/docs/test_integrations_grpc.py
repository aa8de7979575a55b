"""The OTLP/gRPC section of docs/integrations.md, run as written: its variables (the key and
the address filled in) and its Python program, against a collector's gRPC port."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from support import ROOT, Collector

from app.domain.pricing import PriceTable

SECTION = "## The OpenTelemetry SDK over OTLP/gRPC"


def _section() -> str:
    text = (ROOT / "docs" / "integrations.md").read_text()
    return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


def _variables(section: str, key: str, collector: Collector) -> dict[str, str]:
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "no sh block in the section"
    variables = {}
    for line in block[1].strip().splitlines():
        assert line.startswith("export "), line
        name, _, value = line.removeprefix("export ").partition("=")
        (value,) = shlex.split(value)
        variables[name] = value
    assert variables["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4317"
    variables["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://{collector.grpc_target}"
    variables["OTEL_EXPORTER_OTLP_HEADERS"] = variables["OTEL_EXPORTER_OTLP_HEADERS"].replace(
        "<key>", key
    )
    return variables


async def test_the_grpc_snippet_stores_span_counter_and_log(
    collector: Collector,
    make_key,
    project_name: str,
    db: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    key = await make_key(project_name, "ingest")
    section = _section()
    code = re.search(r"<!-- run: otlp-grpc -->\n```python\n(.*?)\n```", section, re.S)
    assert code, "no python block marked run: otlp-grpc in the section"
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    env.update(_variables(section, key, collector))
    run = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code[1]],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "Failed to export" not in run.stderr, run.stderr
    trace_id = run.stdout.strip().splitlines()[-1]

    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project_name)
    span = await db.fetchrow(
        "SELECT service_name, gen_ai_model, gen_ai_input_tokens, gen_ai_output_tokens, cost_usd "
        "FROM spans WHERE project_id = $1 AND trace_id = $2",
        project_id,
        bytes.fromhex(trace_id),
    )
    assert span is not None, run.stderr
    price = PriceTable.builtin().price_for("gpt-4o-mini", "openai")
    assert price is not None
    assert dict(span) == {
        "service_name": "support-agent",
        "gen_ai_model": "gpt-4o-mini",
        "gen_ai_input_tokens": 1200,
        "gen_ai_output_tokens": 350,
        "cost_usd": pytest.approx(price.cost_usd(1200, 350, 0), rel=1e-9),
    }
    point = await db.fetchrow(
        "SELECT s.service_name, p.value FROM metric_points p "
        "JOIN metric_series s USING (project_id, series_id) "
        "WHERE p.project_id = $1 AND s.name = 'gen_ai.client.token.usage'",
        project_id,
    )
    assert point is not None and dict(point) == {"service_name": "support-agent", "value": 1550.0}
    log = await db.fetchrow(
        "SELECT service_name, severity_text, body, trace_id FROM logs WHERE project_id = $1",
        project_id,
    )
    assert log is not None
    assert (log["service_name"], log["severity_text"]) == ("support-agent", "WARN")
    assert json.loads(log["body"]) == "the answer took 9 s"
    assert log["trace_id"].hex() == trace_id
