"""The curl snippet of docs/integrations.md's Grafana section, run as written against a
collector holding an assistant turn (only the key and the address are filled in)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess

import httpx
import pytest
from api.jaeger_kit import agent_trace, now_us, send_otlp
from support import ROOT, Collector

SECTION = "## Grafana and the Jaeger UI"


def _snippet() -> list[str]:
    text = (ROOT / "docs" / "integrations.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "no sh block in the section"
    return block[1].strip().splitlines()


async def test_the_curl_snippet_answers_as_grafana_expects(
    client: httpx.AsyncClient, collector: Collector, key: str
) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    await send_otlp(
        client, agent_trace("4bf92f3577b34da6a3ce929d0e0e4736", (now_us() - 600_000_000) * 1000)
    )
    lines = _snippet()
    assert lines[0] == "KEY=<key>"
    answers = []
    for line in lines[1:]:
        command = f"KEY={key}\n" + line.replace("http://localhost:4318", collector.url)
        done = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        answers.append(json.loads(done.stdout))
    services, search, trace, dependencies = answers
    assert services["data"] == ["assistant-api", "assistant-tools"]
    assert [found["traceID"] for found in search["data"]] == ["4bf92f3577b34da6a3ce929d0e0e4736"]
    assert len(trace["data"][0]["spans"]) == 3
    assert dependencies["data"] == [
        {"parent": "assistant-api", "child": "assistant-tools", "callCount": 1}
    ]
