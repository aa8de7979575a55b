"""Price tables: matching rules, cost arithmetic, the built-in table and loading files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.domain.genai import GenAIUsage
from app.domain.pricing import ModelPrice, PriceTable

BUILTIN_JSON = Path(__file__).resolve().parents[2] / "app" / "domain" / "prices.json"


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.builtin()


def usage(
    model: str | None,
    inp: int | None,
    out: int | None,
    cached: int | None = None,
    **kwargs: object,
) -> GenAIUsage:
    return GenAIUsage(
        model=model,
        input_tokens=inp,
        output_tokens=out,
        cache_read_input_tokens=cached,
        **kwargs,  # type: ignore[arg-type]
    )


def price(table: PriceTable, model: str, provider: str | None = None) -> ModelPrice:
    found = table.price_for(model, provider)
    assert found is not None, (model, provider)
    return found


# --- exact costs, computed by hand ------------------------------------------------------------


def test_gpt_4o_with_cached_tokens(table: PriceTable) -> None:
    # 200 uncached * $2.50 + 1000 cached * $1.25 + 300 out * $10, per million.
    cost = table.cost_usd(usage("gpt-4o-2024-08-06", 1200, 300, 1000))
    assert cost == pytest.approx((500 + 1250 + 3000) / 1e6)
    assert cost == pytest.approx(0.00475)


def test_gpt_4o_mini_without_cache(table: PriceTable) -> None:
    # 10k in * $0.15 + 2k out * $0.60 = 1500 + 1200 micro-dollars.
    assert table.cost_usd(usage("gpt-4o-mini", 10_000, 2_000)) == pytest.approx(0.0027)


def test_claude_sonnet_with_cache_reads(table: PriceTable) -> None:
    # 10k uncached * $3 + 40k cached * $0.30 + 1k out * $15 = 30000 + 12000 + 15000.
    cost = table.cost_usd(usage("claude-sonnet-4-5-20250929", 50_000, 1_000, 40_000))
    assert cost == pytest.approx(0.057)


def test_bedrock_claude_id(table: PriceTable) -> None:
    # 100k in * $0.80 + 20k out * $4 = 0.08 + 0.08.
    cost = table.cost_usd(usage("us.anthropic.claude-3-5-haiku-20241022-v1:0", 100_000, 20_000))
    assert cost == pytest.approx(0.16)


def test_gemini_pro_with_cache(table: PriceTable) -> None:
    # 100k uncached * $1.25 + 100k cached * $0.125 + 5k out * $10.
    cost = table.cost_usd(usage("gemini-2.5-pro", 200_000, 5_000, 100_000))
    assert cost == pytest.approx(0.125 + 0.0125 + 0.05)


def test_opus_generations_are_priced_apart(table: PriceTable) -> None:
    assert table.cost_usd(usage("claude-opus-4-1-20250805", 1_000_000, 0)) == pytest.approx(15.0)
    assert table.cost_usd(usage("claude-opus-4-5-20251101", 1_000_000, 0)) == pytest.approx(5.0)


def test_no_cached_price_means_input_price(table: PriceTable) -> None:
    # Mistral has no cache discount: 1M input of which half cached, all at $0.10.
    assert table.cost_usd(usage("mistral-small-latest", 1_000_000, 0, 500_000)) == pytest.approx(
        0.1
    )
    assert table.cost_usd(usage("mistral-large-2411", 1_000_000, 1_000_000)) == pytest.approx(8.0)


def test_cached_above_input_is_clamped(table: PriceTable) -> None:
    # Input reported without the cached part: no negative uncached tokens.
    cost = table.cost_usd(usage("gpt-4o", 100, 0, 500))
    assert cost == pytest.approx(500 * 1.25 / 1e6)


def test_missing_side_counts_as_zero(table: PriceTable) -> None:
    assert table.cost_usd(usage("gpt-4o", None, 1_000)) == pytest.approx(0.01)
    assert table.cost_usd(usage("gpt-4o", 1_000, None)) == pytest.approx(0.0025)


# --- client cost, unknown models ---------------------------------------------------------------


def test_client_cost_wins(table: PriceTable) -> None:
    assert table.cost_usd(usage("gpt-4o", 1_000_000, 1_000_000, client_cost_usd=0.42)) == 0.42
    assert table.cost_usd(usage("my-finetune", 10, 10, client_cost_usd=0.0)) == 0.0
    assert table.cost_usd(usage(None, None, None, client_cost_usd=1.5)) == 1.5


def test_unknown_model_gives_none(table: PriceTable) -> None:
    assert table.cost_usd(usage("llama-3.1-70b-instruct", 1000, 1000)) is None
    assert table.cost_usd(usage(None, 1000, 1000)) is None
    assert table.cost_usd(usage("", 1000, 1000)) is None
    assert table.price_for("totally-unknown") is None
    assert table.price_for(None) is None


def test_no_tokens_gives_none(table: PriceTable) -> None:
    assert table.cost_usd(usage("gpt-4o", None, None)) is None


def test_gpt_5_point_releases_are_not_guessed(table: PriceTable) -> None:
    assert table.price_for("gpt-5.2") is None
    assert price(table, "gpt-5-2025-08-07").input_per_mtok == 1.25


# --- specificity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "prices"),
    [
        ("gpt-4o", (2.50, 10.00, 1.25)),
        ("gpt-4o-mini-2024-07-18", (0.15, 0.60, 0.075)),
        ("openai/gpt-4o-mini", (0.15, 0.60, 0.075)),
        ("gpt-4o-2024-05-13", (5.00, 15.00, 5.00)),
        ("gpt-4.1", (2.00, 8.00, 0.50)),
        ("gpt-4.1-mini", (0.40, 1.60, 0.10)),
        ("gpt-4.1-nano", (0.10, 0.40, 0.025)),
        ("o1", (15.00, 60.00, 7.50)),
        ("o3", (2.00, 8.00, 0.50)),
        ("o3-mini", (1.10, 4.40, 0.55)),
        ("o4-mini-2025-04-16", (1.10, 4.40, 0.275)),
        ("gpt-5", (1.25, 10.00, 0.125)),
        ("gpt-5-mini", (0.25, 2.00, 0.025)),
        ("gpt-5-nano", (0.05, 0.40, 0.005)),
        ("claude-3-5-sonnet-latest", (3.00, 15.00, 0.30)),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", (3.00, 15.00, 0.30)),
        ("claude-3-5-haiku-latest", (0.80, 4.00, 0.08)),
        ("claude-3-opus-20240229", (15.00, 75.00, 1.50)),
        ("claude-3-haiku-20240307", (0.25, 1.25, 0.03)),
        ("claude-haiku-4-5-20251001", (1.00, 5.00, 0.10)),
        ("anthropic/claude-sonnet-4.5", (3.00, 15.00, 0.30)),
        ("gemini-2.5-flash", (0.30, 2.50, 0.03)),
        ("gemini-2.5-flash-lite", (0.10, 0.40, 0.01)),
        ("models/gemini-2.0-flash-001", (0.10, 0.40, 0.025)),
        ("gemini-1.5-pro-002", (1.25, 5.00, 0.3125)),
        ("gemini-1.5-flash", (0.075, 0.30, 0.01875)),
        ("mistral-large-latest", (0.50, 1.50, 0.50)),
        ("mistral-medium-2505", (0.40, 2.00, 0.40)),
        ("codestral-2508", (0.30, 0.90, 0.30)),
        ("ministral-8b-2410", (0.10, 0.10, 0.10)),
        ("GPT-4O-MINI", (0.15, 0.60, 0.075)),
    ],
)
def test_builtin_resolution(table: PriceTable, model: str, prices: tuple[float, ...]) -> None:
    price = table.price_for(model)
    assert price is not None, model
    assert (price.input_per_mtok, price.output_per_mtok, price.cached_input_per_mtok) == prices


def test_longest_match_wins_regardless_of_order() -> None:
    entries = [
        {"pattern": "claude-3-5", "input_per_mtok": 1, "output_per_mtok": 1},
        {"pattern": "claude-3-5-haiku", "input_per_mtok": 2, "output_per_mtok": 2},
    ]
    for ordered in (entries, entries[::-1]):
        table = PriceTable.from_data(ordered)
        assert price(table, "claude-3-5-haiku-latest").pattern == "claude-3-5-haiku"
        assert price(table, "claude-3-5-sonnet-latest").pattern == "claude-3-5"


def test_equal_matches_keep_file_order() -> None:
    table = PriceTable.from_data(
        [
            {"pattern": "gpt-4o", "input_per_mtok": 1, "output_per_mtok": 1},
            {"pattern": "GPT-4O", "input_per_mtok": 2, "output_per_mtok": 2},
        ]
    )
    assert price(table, "gpt-4o").input_per_mtok == 1


def test_provider_specific_entries() -> None:
    table = PriceTable.from_data(
        [
            {"pattern": "llama-3.1-70b", "input_per_mtok": 0.9, "output_per_mtok": 0.9},
            {"pattern": "llama", "provider": "Groq", "input_per_mtok": 0.6, "output_per_mtok": 0.8},
            {"pattern": ".", "provider": "ollama", "input_per_mtok": 0, "output_per_mtok": 0},
        ]
    )
    assert price(table, "llama-3.1-70b", "groq").input_per_mtok == 0.6
    assert price(table, "llama-3.1-70b", " GROQ ").input_per_mtok == 0.6
    assert price(table, "llama-3.1-70b", "together").input_per_mtok == 0.9
    assert price(table, "llama-3.1-70b").input_per_mtok == 0.9
    assert price(table, "llama-3.1-70b", "ollama").input_per_mtok == 0
    assert table.price_for("mixtral", "groq") is None
    cost = table.cost_usd(usage("llama-3.1-70b", 1_000_000, 1_000_000, provider="groq"))
    assert cost == pytest.approx(0.6 + 0.8)


def test_overlay_wins_ties(table: PriceTable) -> None:
    override = PriceTable.from_data(
        [{"pattern": r"\bgpt-4o\b", "input_per_mtok": 1, "output_per_mtok": 2}]
    )
    merged = table.overlay(override)
    assert price(merged, "gpt-4o").input_per_mtok == 1
    # A longer built-in match still beats the shorter override.
    assert price(merged, "gpt-4o-mini").input_per_mtok == 0.15
    assert price(table, "gpt-4o").input_per_mtok == 2.5


def test_lookup_is_cached(table: PriceTable) -> None:
    fresh = PriceTable(list(table.entries))
    first = fresh.price_for("claude-sonnet-4-5", "anthropic")
    second = fresh.price_for("claude-sonnet-4-5", "anthropic")
    assert first is second
    assert fresh._lookup.cache_info().hits == 1


def test_model_price_computes_default_regex() -> None:
    price = ModelPrice("foo", 1.0, 2.0, 0.5)
    assert price.regex.search("FOO-1")
    assert price.cost_usd(1_000_000, 1_000_000, 500_000) == pytest.approx(0.5 + 0.25 + 2.0)


# --- the built-in file -------------------------------------------------------------------------


def test_builtin_is_shared_and_documented(table: PriceTable) -> None:
    assert PriceTable.builtin() is table
    data = json.loads(BUILTIN_JSON.read_text())
    vendors = {group["vendor"] for group in data["groups"]}
    assert vendors == {"openai", "anthropic", "google", "mistral"}
    for group in data["groups"]:
        assert group["source"].startswith("https://")
        assert group["as_of"]
    assert PriceTable.from_file(BUILTIN_JSON).entries == table.entries


# --- loading files -----------------------------------------------------------------------------


def test_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n"
        "  - pattern: my-model\n"
        "    input_per_mtok: 1.5\n"
        "    output_per_mtok: 6\n"
        "    cached_input_per_mtok: 0.15\n"
        "  - pattern: ^other$\n"
        "    provider: vllm\n"
        "    input_per_mtok: 0\n"
        "    output_per_mtok: 0\n"
        "    note: self-hosted\n"
    )
    table = PriceTable.from_file(path)
    assert len(table) == 2
    # 1M uncached * 1.5 + 1M cached * 0.15 + 1M out * 6.
    assert table.cost_usd(usage("my-model-v2", 2_000_000, 1_000_000, 1_000_000)) == pytest.approx(
        7.65
    )
    assert price(table, "other", "vllm").provider == "vllm"
    assert table.price_for("another", "vllm") is None


def test_yml_list_and_json_file(tmp_path: Path) -> None:
    yml = tmp_path / "p.yml"
    yml.write_text("- {pattern: a, input_per_mtok: 1, output_per_mtok: 2}\n")
    assert price(PriceTable.from_file(yml), "a").cached_input_per_mtok == 1.0
    js = tmp_path / "p.json"
    group = {"vendor": "x", "models": [{"pattern": "b", "input_per_mtok": 3, "output_per_mtok": 4}]}
    js.write_text(json.dumps({"groups": [group]}))
    assert price(PriceTable.from_file(str(js)), "b").output_per_mtok == 4.0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", "{not json", "not valid JSON"),
        ("bad.yaml", "models: [unclosed", "not valid YAML"),
        ("bad.toml", "x = 1", "must end in .yaml, .yml or .json"),
        ("scalar.json", "42", "expected a list of entries"),
        ("nokey.json", '{"prices": []}', "expected a 'models' or 'groups' key"),
        ("modelsdict.json", '{"models": {"pattern": "x"}}', "'models' must be a list"),
        ("group.json", '{"groups": [{"vendor": "x"}]}', "group #1 must be a mapping"),
        ("entry.json", '["gpt-4o"]', "entry #1: expected a mapping, got str"),
        (
            "missing.yaml",
            "- {pattern: ok, input_per_mtok: 1, output_per_mtok: 1}\n"
            "- {pattern: gpt-x, input_per_mtok: 1}\n",
            "entry #2 ('gpt-x'): 'output_per_mtok' is required",
        ),
        (
            "negative.json",
            '[{"pattern": "gpt-x", "input_per_mtok": -1, "output_per_mtok": 1}]',
            "entry #1 ('gpt-x'): 'input_per_mtok' must be a finite number >= 0",
        ),
        (
            "string.json",
            '{"models": [{"pattern": "gpt-x", "input_per_mtok": "1.0", "output_per_mtok": 1}]}',
            "models entry #1 ('gpt-x'): 'input_per_mtok' must be a number",
        ),
        (
            "bool.json",
            '[{"pattern": "gpt-x", "input_per_mtok": 1, "output_per_mtok": true}]',
            "'output_per_mtok' must be a number",
        ),
        (
            "regex.json",
            '[{"pattern": "gpt-(4o", "input_per_mtok": 1, "output_per_mtok": 1}]',
            "entry #1 ('gpt-(4o'): invalid regular expression",
        ),
        (
            "typo.json",
            '[{"pattern": "gpt-x", "input_per_mtok": 1, "output_per_mtok": 1, "cached": 0.1}]',
            "entry #1 ('gpt-x'): unknown key(s) cached",
        ),
        ("nopattern.json", '[{"input_per_mtok": 1, "output_per_mtok": 1}]', "'pattern' must be"),
        (
            "provider.json",
            '[{"pattern": "x", "provider": 3, "input_per_mtok": 1, "output_per_mtok": 1}]',
            "'provider' must be a non-empty string",
        ),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError) as info:
        PriceTable.from_file(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ValueError, match="cannot read price file"):
        PriceTable.from_file(path)
