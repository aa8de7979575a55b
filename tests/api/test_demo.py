"""The demo command sends traces, logs, metrics and errors that the API then shows, and
says so only when it is true: it checks the collector and the key first, and counts failed
exports."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from support import ROOT, Collector, free_port

from app.demo import run_demo


async def test_demo_populates_every_signal(client, key, collector, db, project_name) -> None:
    assert run_demo(collector.url, key, conversations=12, seed=3) == 0
    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project_name)
    spans = await db.fetchval("SELECT count(*) FROM spans WHERE project_id = $1", project_id)
    logs = await db.fetchval("SELECT count(*) FROM logs WHERE project_id = $1", project_id)
    points = await db.fetchval(
        "SELECT count(*) FROM metric_points WHERE project_id = $1", project_id
    )
    assert spans > 12 * 4 and logs >= 12 and points > 0
    overview = (await client.get("/api/v1/dashboard/overview")).json()
    assert overview["requests"] == 12
    assert overview["llm"]["cost_usd"] > 0 and overview["llm"]["input_tokens"] > 0
    models = (await client.get("/api/v1/dashboard/llm")).json()["models"]
    assert {item["provider"] for item in models} <= {"anthropic", "openai", "gcp.gemini"}
    assert len(models) >= 2


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ("none", "no API key given"),
        ("wrong", "the collector refused the key"),
        ("read-only", "the key cannot send data"),
    ],
)
async def test_demo_refuses_to_start_without_a_working_key(
    collector: Collector,
    make_key: Callable[..., Any],
    project_name: str,
    capsys: pytest.CaptureFixture[str],
    given: str,
    fragment: str,
) -> None:
    keys = {"none": None, "wrong": "tc_wrong", "read-only": await make_key(project_name, "read")}
    assert run_demo(collector.url, keys[given], conversations=2) == 1
    output = capsys.readouterr()
    assert "sent" not in output.out
    assert fragment in output.err and "keys create --project demo" in output.err


def test_demo_says_when_the_collector_cannot_be_reached(capsys: pytest.CaptureFixture[str]):
    url = f"http://127.0.0.1:{free_port()}"
    assert run_demo(url, "tc_anything", conversations=2) == 1
    output = capsys.readouterr()
    assert "sent" not in output.out
    assert f"cannot reach the collector at {url}" in output.err and "make run" in output.err


async def test_demo_counts_failed_exports(
    start_collector: Callable[..., Collector], key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The check passes (an empty export fits in 512 bytes); the real exports do not (413).
    tiny = start_collector(env={"TELEMETRY_MAX_BODY_BYTES": "512"})
    assert run_demo(tiny.url, key, conversations=2) == 1
    output = capsys.readouterr()
    assert "sent" not in output.out
    assert "exports failed" in output.err and "span exports" in output.err


def test_demo_url_follows_telemetry_port() -> None:
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("TELEMETRY_")}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "--key", "tc_anything"],
        cwd=ROOT,
        env={**env, "TELEMETRY_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"cannot reach the collector at http://127.0.0.1:{port}" in result.stderr
