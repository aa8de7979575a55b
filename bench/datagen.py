"""Realistic assistant traces for benchmarks: conversations of 8–30 spans over 5 services."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

SERVICES = ("assistant-api", "planner", "tool-runner", "retriever", "llm-gateway")
MODELS = (
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5-20250929"),
    ("gcp.gemini", "gemini-2.5-flash"),
)
TOOLS = ("read_file", "run_tests", "search_code", "apply_patch", "web_fetch")
ERROR_RATE = 0.03


def _kv(key: str, value: object) -> common_pb2.KeyValue:
    any_value = common_pb2.AnyValue()
    if isinstance(value, bool):
        any_value.bool_value = value
    elif isinstance(value, int):
        any_value.int_value = value
    elif isinstance(value, float):
        any_value.double_value = value
    else:
        any_value.string_value = str(value)
    return common_pb2.KeyValue(key=key, value=any_value)


def _span(
    rng: random.Random,
    trace_id: bytes,
    parent: bytes | None,
    name: str,
    kind: int,
    start_ns: int,
    duration_ns: int,
    attributes: dict[str, object],
    error: bool,
) -> trace_pb2.Span:
    span = trace_pb2.Span(
        trace_id=trace_id,
        span_id=rng.randbytes(8),
        parent_span_id=parent or b"",
        name=name,
        kind=kind,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + duration_ns,
        attributes=[_kv(key, value) for key, value in attributes.items()],
    )
    if error:
        span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
        span.status.message = "tool execution failed"
        span.events.append(
            trace_pb2.Span.Event(
                time_unix_nano=start_ns + duration_ns,
                name="exception",
                attributes=[
                    _kv("exception.type", "TimeoutError"),
                    _kv("exception.message", f"call timed out after {duration_ns // 10**6} ms"),
                    _kv(
                        "exception.stacktrace",
                        'Traceback (most recent call last):\n  File "/srv/agent/tools.py", '
                        'line 88, in run\n    result = await call()\nTimeoutError: timed out',
                    ),
                ],
            )
        )
    return span


def trace_spans(rng: random.Random, start_ns: int) -> list[tuple[str, trace_pb2.Span]]:
    """One conversation turn: a SERVER root, LLM calls and tool executions beneath it."""
    trace_id = rng.randbytes(16)
    size = rng.randint(8, 30)
    total_ns = rng.randint(2, 40) * 10**8
    root = _span(
        rng, trace_id, None, "POST /v1/chat", 2, start_ns, total_ns,
        {"http.request.method": "POST", "http.route": "/v1/chat", "http.response.status_code": 200,
         "user.id": f"user-{rng.randint(1, 500)}", "session.id": f"s-{rng.randint(1, 5000)}"},
        False,
    )
    spans = [(SERVICES[0], root)]
    offset = 0
    for index in range(size - 1):
        service = SERVICES[1 + index % (len(SERVICES) - 1)]
        duration = rng.randint(5, 2000) * 10**6
        begin = start_ns + min(offset, total_ns - 1)
        offset += duration // 3
        error = rng.random() < ERROR_RATE
        if service == "llm-gateway":
            provider, model = MODELS[rng.randrange(len(MODELS))]
            attributes: dict[str, object] = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": rng.randint(200, 12000),
                "gen_ai.usage.output_tokens": rng.randint(20, 1500),
                "gen_ai.usage.cache_read.input_tokens": rng.randint(0, 150),
                "gen_ai.request.temperature": 0.2,
                "server.address": f"api.{provider}.example",
            }
            name, kind = f"chat {model}", 3
        elif service == "tool-runner":
            tool = TOOLS[rng.randrange(len(TOOLS))]
            attributes = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.call.id": f"call_{rng.getrandbits(48):x}",
                "code.function.name": f"tools.{tool}",
            }
            name, kind = f"execute_tool {tool}", 1
        else:
            attributes = {
                "db.system.name": "postgresql",
                "db.operation.name": "SELECT",
                "retrieval.documents": rng.randint(1, 20),
                "cache.hit": rng.random() < 0.4,
            }
            name, kind = f"{service}.step", 1
        spans.append(
            (service, _span(rng, trace_id, root.span_id, name, kind, begin, duration, attributes,
                            error))
        )
    return spans


def span_batches(
    total_spans: int, batch_size: int = 512, seed: int = 7, end_ns: int | None = None,
    spread_s: float = 3600.0,
) -> Iterator[trace_service_pb2.ExportTraceServiceRequest]:
    """ExportTraceServiceRequests of `batch_size` spans spread over the last `spread_s`."""
    rng = random.Random(seed)
    end_ns = end_ns or time.time_ns()
    pending: list[tuple[str, trace_pb2.Span]] = []
    produced = 0
    while produced < total_spans:
        start = end_ns - int(rng.random() * spread_s * 1e9) - 5 * 10**9
        for item in trace_spans(rng, start):
            pending.append(item)
            produced += 1
            if len(pending) == batch_size or produced == total_spans:
                yield _request(pending)
                pending = []
            if produced == total_spans:
                break
    if pending:
        yield _request(pending)


def _request(spans: list[tuple[str, trace_pb2.Span]]) -> trace_service_pb2.ExportTraceServiceRequest:
    request = trace_service_pb2.ExportTraceServiceRequest()
    by_service: dict[str, list[trace_pb2.Span]] = {}
    for service, span in spans:
        by_service.setdefault(service, []).append(span)
    for service, items in by_service.items():
        resource_spans = request.resource_spans.add()
        resource_spans.resource.CopyFrom(
            resource_pb2.Resource(
                attributes=[
                    _kv("service.name", service),
                    _kv("service.version", "1.4.2"),
                    _kv("deployment.environment.name", "production"),
                    _kv("telemetry.sdk.language", "python"),
                ]
            )
        )
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = "assistant.instrumentation"
        scope_spans.scope.version = "0.9.0"
        scope_spans.spans.extend(items)
    return request
