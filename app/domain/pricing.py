"""Model price tables and the USD cost of a model call computed from its token usage.

Matching. Each entry's `pattern` is a regular expression searched (`re.search`, case-insensitive,
not anchored) in the model name, so one pattern covers dated ids (`gpt-4o-2024-08-06`), gateway
prefixes (`openai/gpt-4o`) and cloud ids (`us.anthropic.claude-sonnet-4-5-20250929-v1:0`). Anchor
or bound a pattern yourself (`^`, `$`, `\\b`) where that is too loose.

Most specific wins. Among the entries whose pattern matches, the winner is, in order:

1. an entry whose `provider` equals the span's provider (entries naming a different provider,
   or naming one when the span has none, never match);
2. the longest matched text, so `gpt-4o-mini` beats `gpt-4o` and `claude-3-5-haiku` beats
   `claude-3-5` for `claude-3-5-haiku-latest`, whatever the file order;
3. the earlier entry in the table.

Rule 2 means a pattern ending in a wildcard (`gpt-4o.*`) matches the whole name and outranks the
rest; write the literal name instead.

Cost. Prices are USD per million tokens. Following the OpenTelemetry GenAI conventions,
`input_tokens` already includes the cache-read tokens, which are billed at the cached price
(`cached_input_per_mtok`, defaulting to the input price):

    cost = ((input - cached) * input_price + cached * cached_price + output * output_price) / 1e6

A cost the client sent (`gen_ai.usage.cost` …) wins over this computation. Long-context tiers,
cache writes, batch discounts and audio/image tokens are not modelled: this is an estimate at
list price for text tokens.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from app.domain.genai import GenAIUsage

BUILTIN_RESOURCE = "prices.json"
_ENTRY_KEYS = frozenset(
    {"pattern", "provider", "input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "note"}
)
# Model names come from clients; bound the lookup cache rather than trust their variety.
_LOOKUP_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One price-table entry, in USD per million tokens."""

    pattern: str
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float
    provider: str | None = None
    regex: re.Pattern[str] = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.regex is None:
            object.__setattr__(self, "regex", re.compile(self.pattern, re.IGNORECASE))

    def cost_usd(self, input_tokens: int, output_tokens: int, cached_tokens: int) -> float:
        # An instrumentation that reports input without the cached part (Anthropic's raw API
        # does) would make this negative; clamp rather than bill negative money.
        uncached = max(input_tokens - cached_tokens, 0)
        return (
            uncached * self.input_per_mtok
            + cached_tokens * self.cached_input_per_mtok
            + output_tokens * self.output_per_mtok
        ) / 1_000_000


class PriceTable:
    """An ordered list of `ModelPrice` entries with cached lookup by model and provider."""

    def __init__(self, entries: list[ModelPrice]) -> None:
        self.entries: tuple[ModelPrice, ...] = tuple(entries)
        # Per instance, so tables do not share (or keep each other alive through) one cache.
        self._lookup = lru_cache(maxsize=_LOOKUP_CACHE_SIZE)(self._find)

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def builtin(cls) -> PriceTable:
        """The table shipped with the collector (`app/domain/prices.json`)."""
        return _builtin_table()

    @classmethod
    def from_file(cls, path: str | Path) -> PriceTable:
        """Load a YAML (`.yaml`/`.yml`) or JSON table; ValueError names the file and bad entry."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".yaml", ".yml", ".json"):
            raise ValueError(f"{path}: price file must end in .yaml, .yml or .json")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{path}: cannot read price file: {exc.strerror or exc}") from exc
        try:
            data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: not valid {suffix[1:].upper()}: {exc}") from exc
        return cls.from_data(data, source=str(path))

    @classmethod
    def from_data(cls, data: Any, source: str = "price table") -> PriceTable:
        """Build a table from parsed JSON/YAML (see `prices.json` for the accepted shapes)."""
        return cls([_parse_entry(raw, source, label) for label, raw in _raw_entries(data, source)])

    def overlay(self, other: PriceTable) -> PriceTable:
        """A table where `other`'s entries come first, so they win ties against this table's."""
        return PriceTable([*other.entries, *self.entries])

    def price_for(self, model: str | None, provider: str | None = None) -> ModelPrice | None:
        """The most specific entry for `model` (see the module docstring), or None."""
        if not model:
            return None
        return self._lookup(model, provider.strip().lower() if provider else None)

    def _find(self, model: str, provider: str | None) -> ModelPrice | None:
        best: ModelPrice | None = None
        best_rank = (False, -1)
        # Strict `>` keeps the earliest entry among equals.
        for entry in self.entries:
            if entry.provider is not None and entry.provider != provider:
                continue
            match = entry.regex.search(model)
            if match is None:
                continue
            rank = (entry.provider is not None, match.end() - match.start())
            if rank > best_rank:
                best, best_rank = entry, rank
        return best

    def cost_usd(self, usage: GenAIUsage) -> float | None:
        """Client-sent cost if any, else the computed cost; None for unknown models or no tokens."""
        if usage.client_cost_usd is not None:
            return usage.client_cost_usd
        if usage.input_tokens is None and usage.output_tokens is None:
            return None
        price = self.price_for(usage.model, usage.provider)
        if price is None:
            return None
        return price.cost_usd(
            usage.input_tokens or 0,
            usage.output_tokens or 0,
            usage.cache_read_input_tokens or 0,
        )


@lru_cache(maxsize=1)
def _builtin_table() -> PriceTable:
    resource = resources.files("app.domain").joinpath(BUILTIN_RESOURCE)
    return PriceTable.from_data(json.loads(resource.read_text(encoding="utf-8")), BUILTIN_RESOURCE)


def _raw_entries(data: Any, source: str) -> list[tuple[str, Any]]:
    """(label, entry) pairs from one of three shapes: a list of entries, `{"models": [...]}`,
    or `{"groups": [{"models": [...], ...}]}` (a group's other keys are documentation only)."""
    if isinstance(data, list):
        return [(f"entry #{i + 1}", raw) for i, raw in enumerate(data)]
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a list of entries or a mapping with 'models'")
    if "models" not in data and "groups" not in data:
        raise ValueError(f"{source}: expected a 'models' or 'groups' key")
    pairs: list[tuple[str, Any]] = []
    models = data.get("models", [])
    if not isinstance(models, list):
        raise ValueError(f"{source}: 'models' must be a list")
    pairs.extend((f"models entry #{i + 1}", raw) for i, raw in enumerate(models))
    groups = data.get("groups", [])
    if not isinstance(groups, list):
        raise ValueError(f"{source}: 'groups' must be a list")
    for g, group in enumerate(groups, start=1):
        if not isinstance(group, dict) or not isinstance(group.get("models"), list):
            raise ValueError(f"{source}: group #{g} must be a mapping with a 'models' list")
        pairs.extend((f"group #{g} entry #{i + 1}", raw) for i, raw in enumerate(group["models"]))
    return pairs


def _parse_entry(raw: Any, source: str, label: str) -> ModelPrice:
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: {label}: expected a mapping, got {type(raw).__name__}")
    pattern = raw.get("pattern")
    where = f"{source}: {label} ({pattern!r})" if isinstance(pattern, str) else f"{source}: {label}"
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError(f"{where}: 'pattern' must be a non-empty string")
    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"{where}: invalid regular expression: {exc}") from exc
    provider = raw.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider.strip()):
        raise ValueError(f"{where}: 'provider' must be a non-empty string when given")
    input_price = _price(raw, "input_per_mtok", where, required=True)
    output_price = _price(raw, "output_per_mtok", where, required=True)
    cached_price = _price(raw, "cached_input_per_mtok", where, required=False)
    return ModelPrice(
        pattern=pattern,
        input_per_mtok=input_price,
        output_per_mtok=output_price,
        cached_input_per_mtok=input_price if cached_price is None else cached_price,
        provider=provider.strip().lower() if provider else None,
        regex=regex,
    )


def _price(raw: dict[str, Any], key: str, where: str, *, required: bool) -> float | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise ValueError(f"{where}: '{key}' is required (USD per million tokens)")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: '{key}' must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: '{key}' must be a finite number >= 0, got {value!r}")
    return float(value)
