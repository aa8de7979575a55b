"""Reading OpenTelemetry GenAI span attributes into one usage record (model, tokens, cost).

Attribute names follow the OpenTelemetry GenAI semantic conventions (status: Development), now
maintained at https://github.com/open-telemetry/semantic-conventions-genai and mirrored in the
`@opentelemetry/semantic-conventions` incubating constants documented at
https://open-telemetry.github.io/opentelemetry-js/ (e.g. ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS):

- `gen_ai.provider.name`; its predecessor `gen_ai.system` ("Deprecated, use gen_ai.provider.name
  instead", renamed after semconv v1.36.0) is read when the new one is absent.
- `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.operation.name`, `gen_ai.tool.name`.
- `gen_ai.usage.input_tokens` / `gen_ai.usage.output_tokens`; the deprecated
  `gen_ai.usage.prompt_tokens` / `gen_ai.usage.completion_tokens` ("Replaced by
  gen_ai.usage.input_tokens") are read as fallbacks.
- `gen_ai.usage.cache_read.input_tokens` ("The number of input tokens served from a
  provider-managed cache. The value SHOULD be included in gen_ai.usage.input_tokens"); the older
  spelling `gen_ai.usage.cache_read_input_tokens` (listed as deprecated in favour of it by Sentry's
  relay conventions, still emitted by e.g. Strands agents) is the fallback.

Cost is not part of the conventions. A client-sent cost is read from, in order:
`gen_ai.usage.cost` (OpenLIT sets it, Langfuse reads it as an override of its own estimate),
`gen_ai.usage.cost_usd` and `gen_ai.usage.total_cost`; all are taken to be US dollars.

Numbers may arrive as int, float or numeric strings (OTLP JSON encodes int64 as strings). Anything
that is not a finite, non-negative number is ignored, never an error: telemetry from the field is
messy, and one bad attribute must not cost the span. So are token counts above MAX_TOKENS and
costs above MAX_COST_USD: no model call comes near them, and sums of larger values (per-minute
rollups, dashboards) would overflow their 64-bit columns and fail the whole batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system")
REQUEST_MODEL_KEY = "gen_ai.request.model"
RESPONSE_MODEL_KEY = "gen_ai.response.model"
OPERATION_KEY = "gen_ai.operation.name"
TOOL_NAME_KEY = "gen_ai.tool.name"
INPUT_TOKENS_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_TOKENS_KEYS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ_KEYS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
)
CLIENT_COST_KEYS = ("gen_ai.usage.cost", "gen_ai.usage.cost_usd", "gen_ai.usage.total_cost")

GENAI_PREFIX = "gen_ai."
MAX_TOKENS = 10**12
MAX_COST_USD = 1e6


@dataclass(frozen=True, slots=True)
class GenAIUsage:
    """What one span says about a model call. Any field may be None when the span omits it."""

    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    # The model used for pricing: the response model when present, since that is what served.
    model: str | None = None
    operation: str | None = None
    # Per the conventions this includes cache_read_input_tokens.
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    tool_name: str | None = None
    client_cost_usd: float | None = None


def extract_genai(attributes: dict[str, Any]) -> GenAIUsage | None:
    """The GenAI usage a span's attributes describe, or None when no `gen_ai.*` key is present."""
    # A plain loop: this runs for every span, and most spans are not model calls.
    for key in attributes:
        if type(key) is str and key.startswith(GENAI_PREFIX):
            break
    else:
        return None
    request_model = _text(attributes.get(REQUEST_MODEL_KEY))
    response_model = _text(attributes.get(RESPONSE_MODEL_KEY))
    return GenAIUsage(
        provider=_first_text(attributes, PROVIDER_KEYS),
        request_model=request_model,
        response_model=response_model,
        model=response_model or request_model,
        operation=_text(attributes.get(OPERATION_KEY)),
        input_tokens=_first_count(attributes, INPUT_TOKENS_KEYS),
        output_tokens=_first_count(attributes, OUTPUT_TOKENS_KEYS),
        cache_read_input_tokens=_first_count(attributes, CACHE_READ_KEYS),
        tool_name=_text(attributes.get(TOOL_NAME_KEY)),
        client_cost_usd=_first_amount(attributes, CLIENT_COST_KEYS),
    )


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _first_text(attributes: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        text = _text(attributes.get(key))
        if text is not None:
            return text
    return None


def parse_amount(value: Any) -> float | None:
    """A finite, non-negative number from an int, float or numeric string; else None."""
    # bool is an int subclass, but `True` tokens is a bug upstream, not a count of one.
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if value >= 0 else None
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def parse_count(value: Any) -> int | None:
    """A token count in 0..MAX_TOKENS; fractional values are rounded to the nearest integer."""
    if type(value) is int:
        return value if 0 <= value <= MAX_TOKENS else None
    number = parse_amount(value)
    return None if number is None or number > MAX_TOKENS else round(number)


def _first_count(attributes: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    # The first usable value wins, so a garbled current key still falls back to an older one.
    for key in keys:
        count = parse_count(attributes.get(key))
        if count is not None:
            return count
    return None


def _first_amount(attributes: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        amount = parse_amount(attributes.get(key))
        if amount is not None and amount <= MAX_COST_USD:
            return amount
    return None
