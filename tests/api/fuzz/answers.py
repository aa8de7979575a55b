"""What the fuzz suite accepts as an answer: the documented shapes (README "API", OTLP/HTTP),
never a 5xx; and a tally of what was sent, printed at the end of the run."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

OTLP_RESPONSES = {
    "traces": trace_service_pb2.ExportTraceServiceResponse,
    "logs": logs_service_pb2.ExportLogsServiceResponse,
    "metrics": metrics_service_pb2.ExportMetricsServiceResponse,
}
PROTOBUF = "application/x-protobuf"
PROTOBUF_TYPES = (PROTOBUF, "application/protobuf", "application/vnd.google.protobuf")


@dataclass
class Tally:
    """Requests sent by the fuzz tests, by status class; the answers that were 5xx."""

    by_class: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)

    def count(self, method: str, url: str, status: int, body: bytes) -> None:
        self.by_class[f"{status // 100}xx"] += 1
        if status >= 500:
            self.server_errors.append(f"{method} {url[:200]} -> {status} {body[:200]!r}")

    def summary(self) -> str:
        total = sum(self.by_class.values())
        classes = ", ".join(f"{name}: {count}" for name, count in sorted(self.by_class.items()))
        return f"fuzz: {total} requests ({classes}); 5xx answers: {len(self.server_errors)}"


TALLY = Tally()


def checked(response: httpx.Response) -> httpx.Response:
    """Count the answer; no 5xx is ever right for input, whatever the input."""
    request = response.request
    TALLY.count(request.method, str(request.url), response.status_code, response.content)
    assert response.status_code < 500, (response.status_code, response.text[:500])
    return response


def error_shape(response: httpx.Response, *allowed: int) -> None:
    assert response.status_code in allowed, (response.status_code, response.text[:500])
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert all(isinstance(value, str) and value for value in body["error"].values()), body


def native_answer(response: httpx.Response, kind: str, sent: Any) -> None:
    """200 `{"accepted", "rejected": [{"index", "reason"}]}` (errors: plus fingerprints) for
    a well-formed body; else 400/413/415 in the error shape."""
    checked(response)
    if response.status_code != 200:
        error_shape(response, 400, 413, 415)
        return
    body = response.json()
    expected = {"accepted", "rejected"} | ({"fingerprints"} if kind == "errors" else set())
    assert set(body) == expected, body
    assert isinstance(body["accepted"], int) and body["accepted"] >= 0
    for item in body["rejected"]:
        assert set(item) == {"index", "reason"} and isinstance(item["reason"], str), item
    items = sent.get(kind) if isinstance(sent, dict) else None
    assert isinstance(items, list), "a body without the items array must be a 400"
    assert body["accepted"] + len(body["rejected"]) == len(items), body
    assert sorted(item["index"] for item in body["rejected"]) == sorted(
        {item["index"] for item in body["rejected"]}
    )


def otlp_answer(response: httpx.Response, signal: str, content_type: str) -> None:
    """200 with the signal's Export*ServiceResponse, or 400/413/415 with a google.rpc.Status,
    in the request's encoding (JSON when the request's Content-Type is not one of OTLP's)."""
    checked(response)
    protobuf = content_type.split(";", 1)[0].strip().lower() in PROTOBUF_TYPES
    assert response.headers["content-type"].startswith(PROTOBUF if protobuf else "application/json")
    if response.status_code == 200:
        if protobuf:
            OTLP_RESPONSES[signal].FromString(response.content)
        else:
            body = response.json()
            assert set(body) <= {"partialSuccess"}, body
        return
    assert response.status_code in (400, 413, 415), response.text[:500]
    if protobuf:
        status = status_pb2.Status.FromString(response.content)
        assert status.message
    else:
        body = response.json()
        assert isinstance(body.get("message"), str) and body["message"], body
        assert set(body) <= {"code", "message", "details"}, body


def _points(series: list[Any]) -> bool:
    return all(
        isinstance(one["labels"], dict)
        and all(
            len(point) == 2 and all(isinstance(part, int | float) for part in point)
            for point in one["points"]
        )
        for one in series
    )


# Top-level keys of each read endpoint's 200 answer, and what else must hold.
READ_SHAPES: dict[str, tuple[set[str], Any]] = {
    "/api/v1/traces": ({"traces", "next_cursor"}, lambda body: isinstance(body["traces"], list)),
    "/api/v1/logs": ({"logs", "next_cursor"}, lambda body: isinstance(body["logs"], list)),
    "/api/v1/services": ({"services"}, lambda body: isinstance(body["services"], list)),
    "/api/v1/metrics": ({"metrics"}, lambda body: isinstance(body["metrics"], list)),
    "/api/v1/metrics/query": ({"series", "name", "type"}, lambda body: _points(body["series"])),
    "/api/v1/errors": ({"errors"}, lambda body: isinstance(body["errors"], list)),
    "/api/v1/errors/{fingerprint}": ({"fingerprint", "events", "hourly_counts"}, None),
    "/api/v1/traces/{trace_id}": ({"trace_id", "spans", "span_count"}, None),
    "/api/v1/dashboard/overview": ({"requests", "error_rate", "latency_ms", "llm"}, None),
    "/api/v1/dashboard/llm": ({"models", "tools"}, None),
}


def read_answer(response: httpx.Response, route: str) -> None:
    """200 in the endpoint's shape; 400 (or 404 for a name or id) in the error shape; a
    path that ends in a slash (an id with a `/`) is redirected to the one without it."""
    checked(response)
    if response.status_code == 307:
        path = unquote(response.request.url.raw_path.decode().split("?")[0])
        assert path.endswith("/"), response.request.url
        assert not response.headers["location"].split("?")[0].endswith("/"), response.headers
        return
    if response.status_code != 200:
        error_shape(response, 400, 404)
        return
    body = json.loads(response.content)
    keys, holds = READ_SHAPES[route]
    assert isinstance(body, dict) and keys <= set(body), (route, body)
    assert holds is None or holds(body), (route, body)
