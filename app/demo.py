"""`telemetry-collector demo`: an hour of realistic assistant telemetry through the OTel SDK.

Conversations become traces (a SERVER turn, an agent loop, LLM calls on several models
with token usage, tool executions, a few failures with exceptions and retries), with logs
correlated to their spans and GenAI metrics. Spans and logs are back-dated across the
last hour so the dashboards have something to show at once.
"""

from __future__ import annotations

import random
import sys
import time
import traceback
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from app.demo_checks import (
    CountedLogExporter,
    CountedMetricExporter,
    CountedSpanExporter,
    DemoError,
    ExportTally,
    check_collector,
)

MODELS = (
    ("anthropic", "claude-sonnet-4-5-20250929", 0.40),
    ("openai", "gpt-4o", 0.25),
    ("openai", "gpt-4o-mini", 0.20),
    ("gcp.gemini", "gemini-2.5-flash", 0.15),
)
TOOLS = ("read_file", "search_code", "run_tests", "apply_patch", "web_fetch")
PROMPTS = (
    "fix the failing test in billing",
    "add pagination to the orders endpoint",
    "explain this stack trace",
    "write a migration for the users table",
    "refactor the retry helper",
)
SECOND = 1_000_000_000


@dataclass
class Pipeline:
    """One service's SDK providers, exporting to the collector."""

    tracer_provider: TracerProvider
    logger_provider: LoggerProvider

    def shutdown(self) -> None:
        self.tracer_provider.force_flush()
        self.logger_provider.force_flush()
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()


def _pipeline(url: str, headers: dict[str, str], service: str, tally: ExportTally) -> Pipeline:
    resource = Resource.create(
        {
            "service.name": service,
            "service.version": "2.3.1",
            "deployment.environment.name": "demo",
        }
    )
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(CountedSpanExporter(tally, endpoint=f"{url}/v1/traces", headers=headers))
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(
            CountedLogExporter(tally, endpoint=f"{url}/v1/logs", headers=headers)
        )
    )
    return Pipeline(tracer_provider, logger_provider)


def _failure(message: str) -> BaseException:
    """A real exception with a real traceback, as an assistant's tool runner would raise."""
    try:
        raise TimeoutError(message)
    except TimeoutError as error:
        return error


class Conversation:
    def __init__(self, rng: random.Random, api: Pipeline, agent: Pipeline, tools: Pipeline):
        self.rng = rng
        self.api_tracer = api.tracer_provider.get_tracer("assistant.api", "2.3.1")
        self.agent_tracer = agent.tracer_provider.get_tracer("assistant.agent", "2.3.1")
        self.tool_tracer = tools.tracer_provider.get_tracer("assistant.tools", "2.3.1")
        self.agent_logger = agent.logger_provider.get_logger("assistant.agent")
        self.tool_logger = tools.logger_provider.get_logger("assistant.tools")
        self.spans = 0
        self.logs = 0

    def run(self, start_ns: int, metrics: dict) -> str:
        rng = self.rng
        prompt = rng.choice(PROMPTS)
        root = self.api_tracer.start_span(
            "POST /v1/chat",
            kind=SpanKind.SERVER,
            start_time=start_ns,
            attributes={
                "http.request.method": "POST",
                "http.route": "/v1/chat",
                "user.id": f"user-{rng.randint(1, 40)}",
                "session.id": f"session-{rng.randint(1, 400)}",
            },
        )
        context = trace.set_span_in_context(root)
        turn = self.agent_tracer.start_span(
            "invoke_agent coding-assistant",
            context=context,
            start_time=start_ns + 2_000_000,
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "coder"},
        )
        turn_context = trace.set_span_in_context(turn)
        self._log(self.agent_logger, start_ns, SeverityNumber.INFO, f"turn started: {prompt}", turn)
        clock = start_ns + 5_000_000
        failed = False
        for step in range(rng.randint(2, 6)):
            clock = self._llm_call(turn_context, clock, metrics)
            if step < 5 and rng.random() < 0.8:
                clock, ok = self._tool_call(turn_context, clock, metrics)
                failed = failed or not ok
        clock = self._llm_call(turn_context, clock, metrics)
        turn.end(end_time=clock)
        status_code = 500 if failed and rng.random() < 0.3 else 200
        root.set_attribute("http.response.status_code", status_code)
        if status_code == 500:
            root.set_status(Status(StatusCode.ERROR, "tool failure surfaced to the user"))
        root.end(end_time=clock + 3_000_000)
        self.spans += 2
        metrics["conversations"].add(1, {"outcome": "error" if status_code == 500 else "ok"})
        return format(root.get_span_context().trace_id, "032x")

    def _llm_call(self, context, clock: int, metrics: dict) -> int:
        rng = self.rng
        provider, model = _pick_model(rng)
        for attempt in range(3):
            duration = int(rng.lognormvariate(6.5, 0.5) * 1_000_000)
            span = self.agent_tracer.start_span(
                f"chat {model}", context=context, kind=SpanKind.CLIENT, start_time=clock
            )
            input_tokens = rng.randint(800, 24000)
            output_tokens = rng.randint(40, 1800)
            cached = int(input_tokens * rng.choice((0, 0, 0.3, 0.6)))
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": provider,
                    "gen_ai.request.model": model,
                    "gen_ai.response.model": model,
                    "gen_ai.request.temperature": 0.2,
                    "gen_ai.usage.input_tokens": input_tokens,
                    "gen_ai.usage.output_tokens": output_tokens,
                    "gen_ai.usage.cache_read.input_tokens": cached,
                }
            )
            rate_limited = rng.random() < 0.03 and attempt < 2
            if rate_limited:
                span.set_attribute("error.type", "429")
                span.set_status(Status(StatusCode.ERROR, "rate limited by provider"))
                self._log(
                    self.agent_logger, clock + duration, SeverityNumber.WARN,
                    f"{model} rate limited, retrying (attempt {attempt + 1})", span,
                )  # fmt: skip
            span.end(end_time=clock + duration)
            self.spans += 1
            attributes = {"gen_ai.request.model": model, "gen_ai.provider.name": provider}
            metrics["duration"].record(duration / SECOND, attributes)
            metrics["tokens"].record(input_tokens, {**attributes, "gen_ai.token.type": "input"})
            metrics["tokens"].record(output_tokens, {**attributes, "gen_ai.token.type": "output"})
            clock += duration + 1_000_000
            if not rate_limited:
                break
            clock += 500_000_000  # back off before retrying
        return clock

    def _tool_call(self, context, clock: int, metrics: dict) -> tuple[int, bool]:
        rng = self.rng
        tool = rng.choice(TOOLS)
        duration = int(rng.lognormvariate(5.0 if tool != "run_tests" else 8.0, 0.6) * 1_000_000)
        span = self.tool_tracer.start_span(
            f"execute_tool {tool}",
            context=context,
            start_time=clock,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.call.id": f"call_{rng.getrandbits(40):x}",
            },
        )
        ok = rng.random() > (0.12 if tool == "run_tests" else 0.03)
        if not ok:
            error = _failure(f"{tool} exceeded its {duration // SECOND + 1}s budget")
            span.record_exception(error, timestamp=clock + duration)
            span.set_status(Status(StatusCode.ERROR, str(error)))
            # The span already carries the exception; the log line only tells the story,
            # so the failure is counted once in its error group.
            self._log(
                self.tool_logger, clock + duration, SeverityNumber.ERROR,
                f"tool {tool} failed: {error}", span,
            )  # fmt: skip
        elif rng.random() < 0.01:
            # An error known only from a log record: exception attributes, no span event.
            try:
                raise ValueError(f"context window exceeded: {rng.randint(128, 200)}k tokens")
            except ValueError as overflow:
                self._log(
                    self.tool_logger, clock + duration, SeverityNumber.ERROR,
                    "could not fit the tool output into the context", span,
                    {
                        "exception.type": "ValueError",
                        "exception.message": str(overflow),
                        "exception.stacktrace": "".join(traceback.format_exception(overflow)),
                    },
                )  # fmt: skip
        span.end(end_time=clock + duration)
        self.spans += 1
        metrics["tool_runs"].add(1, {"gen_ai.tool.name": tool, "outcome": "ok" if ok else "error"})
        return clock + duration + 1_000_000, ok

    def _log(self, logger, when: int, severity, message: str, span, extra=None) -> None:
        context = span.get_span_context()
        logger.emit(
            timestamp=when,
            observed_timestamp=when,
            context=trace.set_span_in_context(trace.NonRecordingSpan(context)),
            severity_number=severity,
            severity_text=severity.name,
            body=message,
            attributes=extra or {},
        )
        self.logs += 1


def _pick_model(rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    for provider, model, share in MODELS:
        if roll < share:
            return provider, model
        roll -= share
    return MODELS[0][0], MODELS[0][1]


def run_demo(url: str, key: str | None, conversations: int = 150, seed: int = 42) -> int:
    """Send the sample; 0 when every export was acknowledged, else 1 with the reason."""
    url = url.rstrip("/")
    try:
        check_collector(url, key)
        summary = _send(url, key, conversations, seed)
    except DemoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary)
    return 0


def _send(url: str, key: str | None, conversations: int, seed: int) -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    tally = ExportTally()
    api = _pipeline(url, headers, "assistant-api", tally)
    agent = _pipeline(url, headers, "assistant-agent", tally)
    tools = _pipeline(url, headers, "assistant-tools", tally)
    reader = PeriodicExportingMetricReader(
        CountedMetricExporter(tally, endpoint=f"{url}/v1/metrics", headers=headers),
        export_interval_millis=60_000,
    )
    meter_provider = MeterProvider(
        resource=Resource.create({"service.name": "assistant-agent"}), metric_readers=[reader]
    )
    meter = meter_provider.get_meter("assistant.agent")
    metrics = {
        # Bucket boundaries as the GenAI semantic conventions advise for these two.
        "duration": meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="LLM call duration",
            explicit_bucket_boundaries_advisory=[
                0.01,
                0.02,
                0.04,
                0.08,
                0.16,
                0.32,
                0.64,
                1.28,
                2.56,
                5.12,
                10.24,
                20.48,
                40.96,
                81.92,
            ],  # fmt: skip
        ),
        "tokens": meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Tokens per LLM call",
            explicit_bucket_boundaries_advisory=[
                1,
                4,
                16,
                64,
                256,
                1024,
                4096,
                16384,
                65536,
                262144,
                1048576,
                4194304,
                16777216,
                67108864,
            ],  # fmt: skip
        ),
        "conversations": meter.create_counter(
            "assistant.conversations", unit="{conversation}", description="Conversation turns"
        ),
        "tool_runs": meter.create_counter(
            "assistant.tool.runs", unit="{run}", description="Tool executions"
        ),
    }
    rng = random.Random(seed)
    conversation = Conversation(rng, api, agent, tools)
    now = time.time_ns()
    trace_ids = []
    for index in range(conversations):
        # Spread over the last hour, oldest first, ending a couple of minutes ago.
        start = now - 3600 * SECOND + int(index * (3480 * SECOND) / conversations)
        trace_ids.append(conversation.run(start + rng.randint(0, 5) * SECOND, metrics))
    for pipeline in (api, agent, tools):
        pipeline.shutdown()
    meter_provider.force_flush()
    meter_provider.shutdown()
    tally.check()
    lines = [
        f"sent {conversations} conversations: {conversation.spans} spans, "
        f"{conversation.logs} logs, and GenAI metrics to {url}",
        "look at (with a key that has the read scope):",
    ]
    for path in (
        "/api/v1/dashboard/overview",
        "/api/v1/dashboard/llm",
        "/api/v1/errors",
        f"/api/v1/traces/{trace_ids[-1]}",
    ):
        lines.append(f'  curl -H "Authorization: Bearer $KEY" {url}{path}')
    return "\n".join(lines)
