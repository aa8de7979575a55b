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
                        "line 88, in run\n    result = await call()\nTimeoutError: timed out",
                    ),
                ],
            )
        )
    return span


def trace_spans(
    rng: random.Random, start_ns: int, user_on_calls: bool = False
) -> list[tuple[str, trace_pb2.Span]]:
    """One conversation turn: a SERVER root, LLM calls and tool executions beneath it.

    `user_on_calls` also puts the turn's `user.id` and `session.id` on its LLM calls and
    tool runs, as instrumentations that propagate them (as baggage) do.
    """
    trace_id = rng.randbytes(16)
    size = rng.randint(8, 30)
    total_ns = rng.randint(2, 40) * 10**8
    user = {"user.id": f"user-{rng.randint(1, 500)}", "session.id": f"s-{rng.randint(1, 5000)}"}
    root = _span(
        rng,
        trace_id,
        None,
        "POST /v1/chat",
        2,
        start_ns,
        total_ns,
        {
            "http.request.method": "POST",
            "http.route": "/v1/chat",
            "http.response.status_code": 200,
            **user,
        },
        False,
    )
    spans = [(SERVICES[0], root)]
    propagated = user if user_on_calls else {}
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
                **propagated,
            }
            name, kind = f"chat {model}", 3
        elif service == "tool-runner":
            tool = TOOLS[rng.randrange(len(TOOLS))]
            attributes = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.call.id": f"call_{rng.getrandbits(48):x}",
                "code.function.name": f"tools.{tool}",
                **propagated,
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
            (
                service,
                _span(rng, trace_id, root.span_id, name, kind, begin, duration, attributes, error),
            )
        )
    return spans


def span_batches(
    total_spans: int,
    batch_size: int = 512,
    seed: int = 7,
    end_ns: int | None = None,
    spread_s: float = 3600.0,
    user_on_calls: bool = False,
) -> Iterator[trace_service_pb2.ExportTraceServiceRequest]:
    """ExportTraceServiceRequests of `batch_size` spans spread over the last `spread_s`."""
    rng = random.Random(seed)
    end_ns = end_ns or time.time_ns()
    pending: list[tuple[str, trace_pb2.Span]] = []
    produced = 0
    while produced < total_spans:
        start = end_ns - int(rng.random() * spread_s * 1e9) - 5 * 10**9
        for item in trace_spans(rng, start, user_on_calls):
            pending.append(item)
            produced += 1
            if len(pending) == batch_size or produced == total_spans:
                yield _request(pending)
                pending = []
            if produced == total_spans:
                break
    if pending:
        yield _request(pending)


def _request(
    spans: list[tuple[str, trace_pb2.Span]],
) -> trace_service_pb2.ExportTraceServiceRequest:
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


LOG_LINES = (
    "tool {tool} finished in {ms} ms with exit code 0",
    "retrying {model} after rate limit, attempt {n}",
    "context window at {n}% for session {session}",
    "applied patch to src/billing/invoice.py ({n} hunks)",
    "test run failed: 3 failed, {n} passed in tests/test_orders.py",
    "user {user} asked to refactor the retry helper",
    "cache miss for embedding of chunk {n}, fetching from vector store",
    "timeout while calling {model}: no response after {ms} ms",
)


def log_batches(
    total: int,
    batch_size: int = 512,
    seed: int = 5,
    end_ns: int | None = None,
    spread_s: float = 3600.0,
) -> Iterator[object]:
    """ExportLogsServiceRequests of `batch_size` assistant log records over `spread_s`."""
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.logs.v1 import logs_pb2

    rng = random.Random(seed)
    end_ns = end_ns or time.time_ns()
    made = 0
    while made < total:
        request = logs_service_pb2.ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        service = SERVICES[rng.randrange(len(SERVICES))]
        resource_logs.resource.attributes.extend(
            [_kv("service.name", service), _kv("deployment.environment.name", "production")]
        )
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = "assistant.logging"
        for _ in range(min(batch_size, total - made)):
            severity = rng.choice((9, 9, 9, 9, 13, 17, 5))
            line = rng.choice(LOG_LINES).format(
                tool=rng.choice(TOOLS),
                ms=rng.randint(5, 30000),
                n=rng.randint(1, 99),
                model=rng.choice(MODELS)[1],
                session=rng.randint(1, 5000),
                user=rng.randint(1, 500),
            )
            when = end_ns - int(rng.random() * spread_s * 1e9) - 10**9
            scope_logs.log_records.append(
                logs_pb2.LogRecord(
                    time_unix_nano=when,
                    observed_time_unix_nano=when + 1000,
                    severity_number=severity,
                    severity_text={5: "DEBUG", 9: "INFO", 13: "WARN", 17: "ERROR"}[severity],
                    body=common_pb2.AnyValue(string_value=line),
                    attributes=[
                        _kv("session.id", f"s-{rng.randint(1, 5000)}"),
                        _kv("code.function.name", "agent.step"),
                    ],
                    trace_id=rng.randbytes(16),
                    span_id=rng.randbytes(8),
                )
            )
            made += 1
        yield request


def metric_batches(
    total: int, batch_size: int = 512, seed: int = 9, end_ns: int | None = None
) -> Iterator[object]:
    """ExportMetricsServiceRequests: gauges, cumulative sums and histograms, 512 points each.

    Series repeat across batches (5 services x 4 models x a few metrics), so after the
    first batches every point belongs to a known series, as in a steady-state deployment.
    """
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

    rng = random.Random(seed)
    end_ns = end_ns or time.time_ns()
    made = 0
    step = 0
    bounds = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
    while made < total:
        step += 1
        request = metrics_service_pb2.ExportMetricsServiceRequest()
        resource_metrics = request.resource_metrics.add()
        service = SERVICES[step % len(SERVICES)]
        resource_metrics.resource.attributes.append(_kv("service.name", service))
        scope = resource_metrics.scope_metrics.add()
        scope.scope.name = "assistant.metrics"
        # Each batch is one collection cycle: later cycles are newer, one point per series.
        when = end_ns - 3_600 * 10**9 + step * 1_000_000
        in_batch = min(batch_size, total - made)
        per_kind = max(1, in_batch // 3)
        kinds = [
            ("gen_ai.client.token.usage", "sum"),
            ("assistant.queue.depth", "gauge"),
            ("gen_ai.client.operation.duration", "histogram"),
        ]
        for index, (name, kind) in enumerate(kinds):
            count = per_kind if index < 2 else in_batch - 2 * per_kind
            metric = scope.metrics.add(name=name, unit="1")
            if kind == "sum":
                metric.sum.aggregation_temporality = 2
                metric.sum.is_monotonic = True
                points = metric.sum.data_points
            elif kind == "gauge":
                points = metric.gauge.data_points
            else:
                metric.histogram.aggregation_temporality = 2
                points = metric.histogram.data_points
            for series in range(count):
                attributes = [
                    _kv("gen_ai.request.model", MODELS[series % 4][1]),
                    _kv("worker", f"w{series}"),
                ]
                if kind == "histogram":
                    counts = [rng.randint(0, 50) for _ in range(len(bounds) + 1)]
                    points.add(
                        start_time_unix_nano=end_ns - 7_200 * 10**9,
                        time_unix_nano=when,
                        attributes=attributes,
                        count=sum(counts),
                        sum=float(sum(counts) * 300),
                        bucket_counts=counts,
                        explicit_bounds=bounds,
                    )
                else:
                    points.add(
                        start_time_unix_nano=end_ns - 7_200 * 10**9,
                        time_unix_nano=when,
                        attributes=attributes,
                        as_double=float(step * 10 + series),
                    )
        made += in_batch
        yield request
