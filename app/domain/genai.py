"""Reading a span's GenAI attributes into one usage record (model, tokens, cost, tool).

Which attributes are read, from which convention (OpenTelemetry GenAI, OpenLLMetry, OpenInference)
and in what order, is `app/domain/genai_conventions.py`; this module applies it.

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

from app.domain import genai_conventions as conv

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


_NOTHING = GenAIUsage()


def extract_genai(attributes: dict[str, Any]) -> GenAIUsage | None:
    """The GenAI usage a span's attributes describe, or None when they describe none.

    A span with any `gen_ai.*` key always gets a record (possibly empty); one with only other
    conventions' keys gets one when something was read from them.
    """
    # A plain loop: this runs for every span, and most spans are not model calls.
    found: str | None = None
    for key in attributes:
        if type(key) is str and key.startswith(conv.SIGNAL_PREFIXES):
            found = key
            if key.startswith(conv.GENAI_PREFIX):
                break
    if found is None:
        return None
    usage = _read(attributes)
    if usage == _NOTHING and not found.startswith(conv.GENAI_PREFIX):
        return None
    return usage


def _read(attributes: dict[str, Any]) -> GenAIUsage:
    get = attributes.get
    # The libraries' span kinds, compared case-blind (OpenInference writes LLM, OpenLLMetry tool).
    oi_kind = get(conv.OPENINFERENCE_SPAN_KIND)
    oi_kind = (oi_kind.strip().upper() or None) if isinstance(oi_kind, str) else None
    tl_kind = get(conv.TRACELOOP_SPAN_KIND)
    tl_kind = (tl_kind.strip().lower() or None) if isinstance(tl_kind, str) else None
    # GenAI's own operation and tool name first, without the other conventions' lookups.
    operation = _text(get(conv.GENAI_OPERATION)) or _operation(attributes, oi_kind, tl_kind)
    tool_name = _text(get(conv.GENAI_TOOL_NAME))
    if tool_name is None and (oi_kind or tl_kind):
        tool_name = _tool_name(attributes, oi_kind, tl_kind)
    if oi_kind in conv.NOT_MODEL_CALL_KINDS:
        return GenAIUsage(operation=operation, tool_name=tool_name)
    input_tokens = _first_count(attributes, conv.INPUT_TOKENS_KEYS)
    output_tokens = _first_count(attributes, conv.OUTPUT_TOKENS_KEYS)
    if (input_tokens is None) != (output_tokens is None):
        total = _first_count(attributes, conv.TOTAL_TOKENS_KEYS)
        known = input_tokens if output_tokens is None else output_tokens
        if total is not None and known is not None and total >= known:
            if input_tokens is None:
                input_tokens = total - known
            else:
                output_tokens = total - known
    return GenAIUsage(
        provider=_provider(attributes),
        request_model=_first_text(attributes, conv.REQUEST_MODEL_KEYS),
        response_model=_first_text(attributes, conv.RESPONSE_MODEL_KEYS),
        model=_first_text(attributes, conv.MODEL_KEYS),
        operation=operation,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=_first_count(attributes, conv.CACHE_READ_KEYS),
        tool_name=tool_name,
        client_cost_usd=_first_amount(attributes, conv.CLIENT_COST_KEYS),
    )


def _provider(attributes: dict[str, Any]) -> str | None:
    provider = _text(attributes.get(conv.GENAI_PROVIDER_NAME))
    if provider is not None:
        return provider
    system = _text(attributes.get(conv.GENAI_SYSTEM))
    if system is not None:
        return conv.legacy_system_provider(system)
    return conv.openinference_provider(
        _text(attributes.get(conv.OPENINFERENCE_PROVIDER)),
        _text(attributes.get(conv.OPENINFERENCE_SYSTEM)),
    )


def _operation(attributes: dict[str, Any], oi_kind: str | None, tl_kind: str | None) -> str | None:
    """The operation from the other conventions, when the span has no gen_ai.operation.name."""
    request_type = _text(attributes.get(conv.TRACELOOP_REQUEST_TYPE))
    if request_type is not None:
        operation = conv.TRACELOOP_REQUEST_TYPE_OPERATIONS.get(request_type.lower())
        if operation is not None:
            return operation
    if tl_kind is not None and tl_kind in conv.TRACELOOP_KIND_OPERATIONS:
        return conv.TRACELOOP_KIND_OPERATIONS[tl_kind]
    if oi_kind == conv.OPENINFERENCE_LLM_KIND:
        completion = any(
            type(key) is str and key.startswith(conv.OPENINFERENCE_COMPLETION_PREFIXES)
            for key in attributes
        )
        return "text_completion" if completion else "chat"
    if oi_kind is not None:
        return conv.OPENINFERENCE_KIND_OPERATIONS.get(oi_kind)
    return None


def _tool_name(attributes: dict[str, Any], oi_kind: str | None, tl_kind: str | None) -> str | None:
    """The tool name from the other conventions, when the span has no gen_ai.tool.name."""
    tool_name = None
    if tl_kind == conv.TRACELOOP_TOOL_KIND:
        tool_name = _text(attributes.get(conv.TRACELOOP_ENTITY_NAME))
    if tool_name is None and oi_kind == conv.OPENINFERENCE_TOOL_KIND:
        tool_name = _text(attributes.get(conv.OPENINFERENCE_TOOL_NAME))
    return tool_name


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


# The _first_* helpers skip absent keys before parsing: most keys they try are absent, and
# this runs for every GenAI span.


def _first_text(attributes: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            text = _text(value)
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
        value = attributes.get(key)
        if value is not None:
            count = parse_count(value)
            if count is not None:
                return count
    return None


def _first_amount(attributes: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        amount = parse_amount(attributes.get(key))
        if amount is not None and amount <= MAX_COST_USD:
            return amount
    return None
