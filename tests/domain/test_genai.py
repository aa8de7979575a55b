"""Extraction of OpenTelemetry GenAI attributes into GenAIUsage."""

from __future__ import annotations

import pytest

from app.domain.genai import (
    MAX_COST_USD,
    MAX_TOKENS,
    GenAIUsage,
    extract_genai,
    parse_amount,
    parse_count,
)


def test_no_genai_attribute_gives_none() -> None:
    assert extract_genai({}) is None
    assert extract_genai({"http.method": "GET", "llm.model": "gpt-4o"}) is None


def test_current_conventions() -> None:
    usage = extract_genai(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.system": "ignored-when-provider-name-present",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.tool.name": "web_search",
        }
    )
    assert usage == GenAIUsage(
        provider="openai",
        request_model="gpt-4o",
        response_model="gpt-4o-2024-08-06",
        model="gpt-4o-2024-08-06",
        operation="chat",
        input_tokens=1200,
        output_tokens=300,
        cache_read_input_tokens=1000,
        tool_name="web_search",
        client_cost_usd=None,
    )


def test_request_model_used_when_no_response_model() -> None:
    usage = extract_genai(
        {"gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.response.model": ""}
    )
    assert usage is not None
    assert usage.model == "claude-sonnet-4-5"
    assert usage.response_model is None


def test_older_names_are_fallbacks() -> None:
    usage = extract_genai(
        {
            "gen_ai.system": "anthropic",
            "gen_ai.usage.prompt_tokens": "2000",
            "gen_ai.usage.completion_tokens": 800,
            "gen_ai.usage.cache_read_input_tokens": 500,
        }
    )
    assert usage is not None
    assert usage.provider == "anthropic"
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (
        2000,
        800,
        500,
    )


def test_current_names_win_over_older_ones() -> None:
    usage = extract_genai(
        {
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.prompt_tokens": 99,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.usage.completion_tokens": 99,
            "gen_ai.usage.cache_read.input_tokens": 5,
            "gen_ai.usage.cache_read_input_tokens": 99,
        }
    )
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (10, 20, 5)


def test_garbled_current_value_falls_back_to_older_key() -> None:
    usage = extract_genai({"gen_ai.usage.input_tokens": "n/a", "gen_ai.usage.prompt_tokens": 7})
    assert usage is not None
    assert usage.input_tokens == 7


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (5, 5),
        (0, 0),
        (5.0, 5),
        (5.6, 6),
        ("42", 42),
        (" 42 ", 42),
        ("42.0", 42),
        ("1e3", 1000),
        (-1, None),
        ("-3", None),
        (-0.5, None),
        ("abc", None),
        ("", None),
        (None, None),
        (True, None),
        (float("nan"), None),
        ("inf", None),
        ([1], None),
        ({"v": 1}, None),
    ],
)
def test_parse_count(raw: object, expected: int | None) -> None:
    assert parse_count(raw) == expected
    usage = extract_genai({"gen_ai.usage.output_tokens": raw})
    assert usage is not None
    assert usage.output_tokens == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"gen_ai.usage.cost": 0.0123}, 0.0123),
        ({"gen_ai.usage.cost": "0.5"}, 0.5),
        ({"gen_ai.usage.cost": 2}, 2.0),
        ({"gen_ai.usage.cost_usd": 0.25}, 0.25),
        ({"gen_ai.usage.total_cost": 0.75}, 0.75),
        ({"gen_ai.usage.cost": 0.1, "gen_ai.usage.cost_usd": 9.0}, 0.1),
        ({"gen_ai.usage.cost": -1.0, "gen_ai.usage.cost_usd": 0.3}, 0.3),
        ({"gen_ai.usage.cost": "free"}, None),
        ({"gen_ai.usage.cost": -0.01}, None),
        ({"gen_ai.operation.name": "chat"}, None),
    ],
)
def test_client_cost(attributes: dict[str, object], expected: float | None) -> None:
    usage = extract_genai(attributes)
    assert usage is not None
    assert usage.client_cost_usd == expected


def test_parse_amount_rejects_non_numbers() -> None:
    assert parse_amount("12.5") == 12.5
    assert parse_amount(False) is None
    assert parse_amount(b"1") is None
    assert parse_amount("-inf") is None


def test_non_string_names_are_ignored() -> None:
    usage = extract_genai(
        {"gen_ai.request.model": 123, "gen_ai.provider.name": ["openai"], "gen_ai.tool.name": " "}
    )
    assert usage == GenAIUsage()


def test_span_with_only_unread_genai_keys_still_counts() -> None:
    assert extract_genai({"gen_ai.agent.name": "planner"}) == GenAIUsage()


@pytest.mark.parametrize(
    ("attributes", "tokens", "cost"),
    [
        ({"gen_ai.usage.input_tokens": 2**62, "gen_ai.usage.cost": 1e308}, None, None),
        ({"gen_ai.usage.input_tokens": "1e300", "gen_ai.usage.cost": "1e7"}, None, None),
        (
            {"gen_ai.usage.input_tokens": MAX_TOKENS, "gen_ai.usage.cost": MAX_COST_USD},
            MAX_TOKENS,
            MAX_COST_USD,
        ),
    ],  # fmt: skip
)
def test_counts_and_costs_past_any_call_are_ignored(
    attributes: dict[str, object], tokens: int | None, cost: float | None
) -> None:
    # Larger values would overflow the 64-bit sums of rollups and fail the whole batch.
    usage = extract_genai(attributes)
    assert usage is not None
    assert (usage.input_tokens, usage.client_cost_usd) == (tokens, cost)
