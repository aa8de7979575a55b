"""OpenInference and OpenLLMetry attributes read into the same GenAIUsage as GenAI's, and which
convention wins when a span carries several (app/domain/genai_conventions.py)."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain import genai_conventions as conv
from app.domain.genai import GenAIUsage, extract_genai

# As openinference-instrumentation-openai 0.1.66 writes a chat completion (content left out).
OPENINFERENCE_LLM = {
    "openinference.span.kind": "LLM",
    "llm.system": "openai",
    "llm.model_name": "gpt-4o-mini-2024-07-18",
    "llm.invocation_parameters": '{"model": "gpt-4o-mini"}',
    "llm.input_messages.0.message.role": "user",
    "llm.token_count.prompt": 1200,
    "llm.token_count.completion": 300,
    "llm.token_count.total": 1500,
    "llm.token_count.prompt_details.cache_read": 1000,
}
# As opentelemetry-instrumentation-openai 0.54.0 (OpenLLMetry) writes one.
OPENLLMETRY_054 = {
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read_input_tokens": 1000,
    "llm.request.type": "chat",
    "llm.usage.total_tokens": 1500,
    "llm.is_streaming": False,
}
CHAT = GenAIUsage(
    provider="openai",
    request_model=None,
    response_model=None,
    model="gpt-4o-mini-2024-07-18",
    operation="chat",
    input_tokens=1200,
    output_tokens=300,
    cache_read_input_tokens=1000,
)


def test_openinference_llm_span() -> None:
    assert extract_genai(OPENINFERENCE_LLM) == CHAT


def test_openllmetry_span() -> None:
    usage = extract_genai(OPENLLMETRY_054)
    assert usage == GenAIUsage(
        **{**_fields(CHAT), "request_model": "gpt-4o-mini", "response_model": CHAT.model}
    )


def test_openllmetry_before_048_with_prompt_and_completion_tokens() -> None:
    usage = extract_genai(
        {
            "gen_ai.system": "Anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.prompt_tokens": 2000,
            "gen_ai.usage.completion_tokens": 500,
            "llm.usage.total_tokens": 2500,
            "llm.request.type": "completion",
        }
    )
    assert usage is not None
    assert (usage.provider, usage.model, usage.operation) == (
        "anthropic",
        "claude-sonnet-4-5",
        "text_completion",
    )
    assert (usage.input_tokens, usage.output_tokens) == (2000, 500)


@pytest.mark.parametrize(
    ("system", "provider"),
    [
        ("MistralAI", "mistral_ai"),
        ("Azure", "azure.ai.openai"),
        ("AWS", "aws.bedrock"),
        ("az.ai.openai", "azure.ai.openai"),
        ("openai", "openai"),
        ("acme", "acme"),
        ("anthropic", "anthropic"),
    ],
)
def test_legacy_system_values_read_as_todays_provider_names(system: str, provider: str) -> None:
    usage = extract_genai({"gen_ai.system": system})
    assert usage is not None and usage.provider == provider


def test_provider_name_is_kept_as_sent() -> None:
    usage = extract_genai({"gen_ai.provider.name": "Azure", "gen_ai.system": "openai"})
    assert usage is not None and usage.provider == "Azure"


@pytest.mark.parametrize(
    ("provider", "system", "expected"),
    [
        ("openai", "openai", "openai"),
        ("azure", "openai", "azure.ai.openai"),
        ("azure", None, "azure.ai.inference"),
        ("aws", "anthropic", "aws.bedrock"),
        ("google", "vertexai", "gcp.vertex_ai"),
        ("google", None, "gcp.gen_ai"),
        ("Google", "VertexAI", "gcp.vertex_ai"),
        ("mistralai", None, "mistral_ai"),
        ("xai", None, "x_ai"),
        ("ollama", "openai", "ollama"),
        ("Fireworks", None, "fireworks"),
        (None, "vertexai", "gcp.vertex_ai"),
        (None, "anthropic", "anthropic"),
        (None, "acme", "acme"),
        (None, None, None),
    ],
)
def test_openinference_provider(provider: str | None, system: str | None, expected: str) -> None:
    assert conv.openinference_provider(provider, system) == expected
    attributes = {"openinference.span.kind": "LLM", "llm.provider": provider, "llm.system": system}
    usage = extract_genai({key: value for key, value in attributes.items() if value})
    assert usage is not None and usage.provider == expected


def test_openinference_completion_and_embedding_operations() -> None:
    completion = extract_genai({**OPENINFERENCE_LLM, "llm.prompts.0.prompt.text": "def fib(n):"})
    assert completion is not None and completion.operation == "text_completion"
    embedding = extract_genai(
        {
            "openinference.span.kind": "EMBEDDING",
            "embedding.model_name": "text-embedding-3-small",
            "llm.token_count.prompt": 8,
            "llm.token_count.total": 8,
        }
    )
    assert embedding == GenAIUsage(
        model="text-embedding-3-small", operation="embeddings", input_tokens=8, output_tokens=0
    )


def test_openinference_tool_span() -> None:
    usage = extract_genai(
        {
            "openinference.span.kind": "TOOL",
            "tool.name": "get_weather",
            "tool.parameters": '{"city": "Paris"}',
        }
    )
    assert usage == GenAIUsage(operation="execute_tool", tool_name="get_weather")


def test_tool_name_needs_the_tool_kind() -> None:
    assert extract_genai({"tool.name": "get_weather"}) is None
    usage = extract_genai({"openinference.span.kind": "LLM", "tool.name": "get_weather"})
    assert usage is not None and usage.tool_name is None


@pytest.mark.parametrize("kind", sorted(conv.NOT_MODEL_CALL_KINDS))
def test_spans_around_model_calls_count_no_usage(kind: str) -> None:
    # smolagents puts the run's token totals on its AGENT span; the LLM spans below count them.
    attributes = {
        **OPENINFERENCE_LLM,
        "openinference.span.kind": kind.lower() if kind == "AGENT" else kind,
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.request.model": "gpt-4o-mini",
        "llm.cost.total": 0.5,
    }
    usage = extract_genai(attributes)
    assert usage is not None
    assert (usage.model, usage.provider, usage.input_tokens, usage.output_tokens) == (
        None,
        None,
        None,
        None,
    )
    assert (usage.cache_read_input_tokens, usage.client_cost_usd) == (None, None)
    assert usage.operation == conv.OPENINFERENCE_KIND_OPERATIONS.get(kind)


def test_a_chain_span_is_not_genai() -> None:
    assert extract_genai({"openinference.span.kind": "CHAIN", "input.value": "hi"}) is None


def test_openinference_cost() -> None:
    usage = extract_genai({**OPENINFERENCE_LLM, "llm.cost.total": 0.0042})
    assert usage is not None and usage.client_cost_usd == 0.0042


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        ("tool", "get_weather", GenAIUsage(operation="execute_tool", tool_name="get_weather")),
        ("agent", "support", GenAIUsage(operation="invoke_agent")),
        ("workflow", "turn", None),
        ("task", "plan", None),
    ],
)
def test_openllmetry_decorator_spans(kind: str, name: str, expected: GenAIUsage | None) -> None:
    attributes = {"traceloop.span.kind": kind, "traceloop.entity.name": name}
    assert extract_genai(attributes) == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"gen_ai.usage.input_tokens": 10, "llm.usage.total_tokens": 25}, (10, 15)),
        ({"llm.token_count.completion": 5, "llm.token_count.total": 25}, (20, 5)),
        ({"gen_ai.usage.input_tokens": 30, "gen_ai.usage.total_tokens": 25}, (30, None)),
        (
            {
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.output_tokens": 1,
                "llm.usage.total_tokens": 99,
            },
            (10, 1),
        ),
        ({"gen_ai.usage.total_tokens": 25}, (None, None)),
        ({"gen_ai.usage.input_tokens": 10, "llm.usage.total_tokens": "n/a"}, (10, None)),
    ],
)
def test_a_missing_count_is_the_total_minus_the_other(
    attributes: dict[str, Any], expected: tuple[int | None, int | None]
) -> None:
    usage = extract_genai(attributes)
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == expected


_PRECEDENCE = {
    "model": conv.MODEL_KEYS,
    "input_tokens": conv.INPUT_TOKENS_KEYS,
    "output_tokens": conv.OUTPUT_TOKENS_KEYS,
    "cache_read_input_tokens": conv.CACHE_READ_KEYS,
    "client_cost_usd": conv.CLIENT_COST_KEYS,
}


@pytest.mark.parametrize(
    ("field", "better", "worse"),
    [
        (field, keys[i], keys[j])
        for field, keys in _PRECEDENCE.items()
        for i in range(len(keys))
        for j in range(i + 1, len(keys))
    ],
)
def test_every_earlier_key_wins_over_every_later_one(field: str, better: str, worse: str) -> None:
    text = field == "model"
    attributes = {"openinference.span.kind": "LLM", worse: "loser" if text else 7}
    alone = extract_genai(attributes)
    assert alone is not None and getattr(alone, field) == ("loser" if text else 7)
    both = extract_genai({**attributes, better: "winner" if text else 3})
    assert both is not None and getattr(both, field) == ("winner" if text else 3)
    # An unusable value of the better key falls back to the worse one.
    garbled = extract_genai({**attributes, better: "" if text else "n/a"})
    assert garbled is not None and getattr(garbled, field) == ("loser" if text else 7)


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        (keys[i], keys[j])
        for keys in (conv.TOTAL_TOKENS_KEYS,)
        for i in range(len(keys))
        for j in range(i + 1, len(keys))
    ],
)
def test_earlier_total_wins(better: str, worse: str) -> None:
    usage = extract_genai({"gen_ai.usage.input_tokens": 10, worse: 99, better: 25})
    assert usage is not None and usage.output_tokens == 15


def test_genai_wins_field_by_field_and_the_others_fill_the_gaps() -> None:
    usage = extract_genai(
        {
            **OPENINFERENCE_LLM,
            **OPENLLMETRY_054,
            "gen_ai.provider.name": "azure.ai.openai",
            "gen_ai.operation.name": "generate_content",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": None,
            "gen_ai.usage.cache_read.input_tokens": 4,
            "openinference.span.kind": "LLM",
        }
    )
    assert usage == GenAIUsage(
        provider="azure.ai.openai",
        request_model="gpt-4o",
        response_model=None,
        model="gpt-4o",
        operation="generate_content",
        input_tokens=10,
        output_tokens=300,  # gen_ai.usage.output_tokens unusable: OpenInference's count
        cache_read_input_tokens=4,
    )


@pytest.mark.parametrize(
    ("attributes", "operation"),
    [
        ({"llm.request.type": "embedding", "openinference.span.kind": "LLM"}, "embeddings"),
        ({"llm.request.type": "unknown", "openinference.span.kind": "LLM"}, "chat"),
        ({"traceloop.span.kind": "agent", "openinference.span.kind": "TOOL"}, "invoke_agent"),
        ({"gen_ai.operation.name": "chat", "traceloop.span.kind": "tool"}, "chat"),
    ],
)
def test_operation_precedence(attributes: dict[str, Any], operation: str) -> None:
    usage = extract_genai(attributes)
    assert usage is not None and usage.operation == operation


def test_tool_name_precedence() -> None:
    every = {
        "gen_ai.tool.name": "a",
        "traceloop.span.kind": "tool",
        "traceloop.entity.name": "b",
        "openinference.span.kind": "TOOL",
        "tool.name": "c",
    }
    names = []
    for drop in ((), ("gen_ai.tool.name",), ("gen_ai.tool.name", "traceloop.entity.name")):
        usage = extract_genai({key: value for key, value in every.items() if key not in drop})
        assert usage is not None
        names.append(usage.tool_name)
    assert names == ["a", "b", "c"]


def test_unknown_llm_keys_are_not_genai() -> None:
    assert extract_genai({"llm.latency_budget_ms": 1500.5, "llm.model": "gpt-4o"}) is None


def test_every_read_key_survives_the_decoders_limit() -> None:
    for keys in (*_PRECEDENCE.values(), conv.TOTAL_TOKENS_KEYS, conv.REQUEST_MODEL_KEYS):
        assert set(keys) <= conv.READ_KEYS
    assert {
        "gen_ai.provider.name",
        "gen_ai.system",
        "llm.provider",
        "llm.system",
        "openinference.span.kind",
        "traceloop.span.kind",
        "traceloop.entity.name",
        "tool.name",
        "gen_ai.tool.name",
        "llm.request.type",
        "gen_ai.operation.name",
    } <= conv.READ_KEYS


def _fields(usage: GenAIUsage) -> dict[str, Any]:
    return {name: getattr(usage, name) for name in GenAIUsage.__slots__}
