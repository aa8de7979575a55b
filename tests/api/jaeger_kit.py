"""Helpers for the Jaeger API tests: Jaeger's fixtures shifted to now, and sending them."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import httpx
from otlp_testkit import attributes_json
from support import ROOT, shift_to_now, unix_nano_times

# Jaeger's own fixtures, copied byte for byte (see SOURCE.md there), and ours beside them.
JAEGER_FIXTURES = ROOT / "tests" / "fixtures" / "jaeger"
MINUTE_US = 60_000_000


def load(name: str, folder: Path = JAEGER_FIXTURES) -> Any:
    return json.loads((folder / name).read_text())


def now_us() -> int:
    return time.time_ns() // 1000


def shifted(document: Any, minutes_ago: int = 10) -> tuple[Any, int]:
    """The document moved to `minutes_ago` before now by a whole number of microseconds
    (so Jaeger's microsecond times shift exactly), and that shift in microseconds."""
    first = min(unix_nano_times(document))
    target = time.time_ns() - minutes_ago * MINUTE_US * 1000
    target -= (target - first) % 1000
    return shift_to_now(document, target), (target - first) // 1000


def shift_jaeger_trace(trace: dict[str, Any], offset_us: int) -> dict[str, Any]:
    """A Jaeger UI trace with every span start and log timestamp moved by `offset_us`."""
    moved = copy.deepcopy(trace)
    for span in moved["spans"]:
        span["startTime"] += offset_us
        for log in span["logs"]:
            log["timestamp"] += offset_us
    return moved


async def send_otlp(client: httpx.AsyncClient, document: Any) -> None:
    response = await client.post("/v1/traces", json=document)
    assert response.status_code == 200, response.text
    assert "partialSuccess" not in response.json() or not response.json()["partialSuccess"], (
        response.text
    )


def jaeger_error(status: int, message: str) -> dict[str, Any]:
    """Jaeger's error body, as its own tests spell it (http_handler_test.go `parsedError`)."""
    return {
        "data": None,
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": [{"code": status, "msg": message}],
    }


def _attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    return attributes_json(values)


def agent_trace(trace_id: str, base_ns: int, *, slow: bool = False) -> dict[str, Any]:
    """An OTLP JSON trace of an assistant turn over two services: `assistant-api` serves
    a chat turn (server) and calls a model (client, GenAI attributes, a link to another
    trace); `assistant-tools` runs a tool (server, child of the API's root) that fails
    with an exception event. Span ids derive from the trace id; times from `base_ns`."""
    ids = {name: trace_id[:12] + suffix for name, suffix in AGENT_SPAN_SUFFIXES.items()}
    root_ms = 2500 if slow else 900
    api_spans = [
        {
            "traceId": trace_id,
            "spanId": ids["root"],
            "name": "chat turn",
            "kind": 2,
            "startTimeUnixNano": str(base_ns),
            "endTimeUnixNano": str(base_ns + root_ms * 1_000_000),
            "attributes": _attributes({"http.request.method": "POST", "user.id": "u-42"}),
        },
        {
            "traceId": trace_id,
            "spanId": ids["model"],
            "parentSpanId": ids["root"],
            "name": "chat gpt-4o",
            "kind": 3,
            "startTimeUnixNano": str(base_ns + 10_000_000),
            "endTimeUnixNano": str(base_ns + 250_000_000),
            "attributes": _attributes(
                {
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 1200,
                    "gen_ai.usage.output_tokens": 350,
                    "gen_ai.request.temperature": 0.2,
                    "gen_ai.request.stop_sequences": ["END"],
                }
            ),
            "links": [{"traceId": LINKED_TRACE_ID, "spanId": LINKED_SPAN_ID}],
            "traceState": "vendor=abc",
        },
    ]
    tool_spans = [
        {
            "traceId": trace_id,
            "spanId": ids["tool"],
            "parentSpanId": ids["root"],
            "name": "run_tests",
            "kind": 2,
            "startTimeUnixNano": str(base_ns + 300_000_000),
            "endTimeUnixNano": str(base_ns + 800_000_000),
            "attributes": _attributes({"gen_ai.tool.name": "run_tests"}),
            "events": [
                {
                    "timeUnixNano": str(base_ns + 790_000_000),
                    "name": "exception",
                    "attributes": _attributes(
                        {"exception.type": "TimeoutError", "exception.message": "timed out"}
                    ),
                },
                {"timeUnixNano": str(base_ns + 320_000_000), "name": "tests.started"},
            ],
            "status": {"code": 2, "message": "tests timed out"},
        }
    ]
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": _attributes(
                        {
                            "service.name": "assistant-api",
                            "telemetry.sdk.language": "python",
                            "host.name": "api-1",
                        }
                    )
                },
                "scopeSpans": [
                    {"scope": {"name": "assistant", "version": "2.1.0"}, "spans": api_spans}
                ],
            },
            {
                "resource": {"attributes": _attributes({"service.name": "assistant-tools"})},
                "scopeSpans": [{"scope": {"name": "tools"}, "spans": tool_spans}],
            },
        ]
    }


AGENT_SPAN_SUFFIXES = {"root": "0001", "model": "0002", "tool": "0003"}
LINKED_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
LINKED_SPAN_ID = "b7ad6b7169203331"
