"""The attributes of the demo's agent, model-call and tool spans, as each library names them.

Most demo conversations use the OpenTelemetry GenAI names; some are recorded as OpenInference
(Arize Phoenix) and OpenLLMetry (Traceloop, up to 0.54) instrument them, so `make demo` shows
all three landing in the same model, token, cost and tool columns
(app/domain/genai_conventions.py reads them).
"""

from __future__ import annotations

import json
from typing import Any

GENAI, OPENINFERENCE, OPENLLMETRY = "genai", "openinference", "openllmetry"
# Conversation i uses ROTATION[i % len(ROTATION)]: every convention shows in any six.
ROTATION = (GENAI, GENAI, OPENINFERENCE, GENAI, GENAI, OPENLLMETRY)

# gen_ai.provider.name → (OpenInference llm.provider, llm.system) and OpenLLMetry's
# gen_ai.system (its capitalised pre-0.5 spelling, which the collector translates back).
_OPENINFERENCE_PROVIDERS = {"openai": ("openai", "openai"), "anthropic": ("anthropic", "anthropic")}
_OPENLLMETRY_SYSTEMS = {"openai": "openai", "anthropic": "Anthropic"}


def agent_attributes(convention: str, agent: str) -> dict[str, Any]:
    if convention == OPENINFERENCE:
        return {"openinference.span.kind": "AGENT", "agent.name": agent}
    if convention == OPENLLMETRY:
        return {"traceloop.span.kind": "agent", "traceloop.entity.name": agent}
    return {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent}


def model_call_attributes(
    convention: str, provider: str, model: str, input_tokens: int, output_tokens: int, cached: int
) -> dict[str, Any]:
    # Gemini keeps GenAI's names everywhere: the other two call Google's API gcp.gen_ai or
    # gcp.vertex_ai, which would split the demo's one Gemini row in two.
    if convention == OPENINFERENCE and provider in _OPENINFERENCE_PROVIDERS:
        host, family = _OPENINFERENCE_PROVIDERS[provider]
        return {
            "openinference.span.kind": "LLM",
            "llm.provider": host,
            "llm.system": family,
            "llm.model_name": model,
            "llm.invocation_parameters": json.dumps({"model": model, "temperature": 0.2}),
            "llm.token_count.prompt": input_tokens,
            "llm.token_count.completion": output_tokens,
            "llm.token_count.total": input_tokens + output_tokens,
            "llm.token_count.prompt_details.cache_read": cached,
        }
    if convention == OPENLLMETRY and provider in _OPENLLMETRY_SYSTEMS:
        return {
            "gen_ai.system": _OPENLLMETRY_SYSTEMS[provider],
            "llm.request.type": "chat",
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            "gen_ai.request.temperature": 0.2,
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "llm.usage.total_tokens": input_tokens + output_tokens,
            "gen_ai.usage.cache_read_input_tokens": cached,
        }
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
        "gen_ai.usage.cache_read.input_tokens": cached,
    }


def tool_attributes(convention: str, tool: str, call_id: str) -> dict[str, Any]:
    if convention == OPENINFERENCE:
        return {"openinference.span.kind": "TOOL", "tool.name": tool, "tool.id": call_id}
    if convention == OPENLLMETRY:
        return {"traceloop.span.kind": "tool", "traceloop.entity.name": tool}
    return {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool,
        "gen_ai.tool.call.id": call_id,
    }
