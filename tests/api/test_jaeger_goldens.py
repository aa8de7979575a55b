"""Golden answers of the Jaeger query API, built from Jaeger's own fixtures where they exist
(tests/fixtures/jaeger/SOURCE.md says where each comes from and how it is derived)."""

from __future__ import annotations

import copy
from typing import Any

import httpx
from api.jaeger_kit import agent_trace, load, now_us, send_otlp, shift_jaeger_trace, shifted
from support import EXAMPLES


async def _trace(client: httpx.AsyncClient, trace_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/traces/{trace_id}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def test_jaegers_otlp_translation_fixture(client: httpx.AsyncClient) -> None:
    """otlp2jaeger-in.json sent over OTLP reads back as Jaeger's otlp2jaeger-out.json.

    Jaeger's fixture is the translator's output; its query service would also run the
    DeduplicateSpans adjuster, and the collector stores a span once: the input's two
    identical spans are one span here."""
    document, offset_us = shifted(load("otlp2jaeger-in.json"))
    await send_otlp(client, document)
    expected = load("otlp2jaeger-out.json")
    trace = expected["data"][0]
    assert trace["spans"][0] == trace["spans"][1]
    trace["spans"] = trace["spans"][:1]
    expected["data"] = [shift_jaeger_trace(trace, offset_us)]
    assert await _trace(client, "83a9efd15c1c98a977e0711cc93ee28b") == expected


def _ui_01_as_stored(offset_us: int) -> dict[str, Any]:
    """Jaeger's ui_01.json, edited where OTLP data stored here cannot say the same thing."""
    trace = copy.deepcopy(load("ui_01.json"))
    spans = trace["spans"]
    # 1. Its second span repeats the first one's id; spans are stored by id, so the OTLP
    #    input gives it id 6, and it comes last (spans are ordered by start, then id).
    duplicate = spans.pop(1)
    duplicate["spanID"] = "0000000000000006"
    spans.append(duplicate)
    # 2. The query service sorts attributes by key (its SortCollections adjuster); the
    #    fixture is the converter's output before that.
    duplicate["tags"].sort(key=lambda tag: tag["key"])
    # 3. OTLP bytes are stored as their base64 text: they come back as a string.
    blob = next(tag for tag in duplicate["tags"] if tag["key"] == "blob")
    blob["type"] = "string"
    for span in spans:
        # 4. An unspecified span kind reads as internal, as everywhere in this collector.
        span["tags"].append({"key": "span.kind", "type": "string", "value": "internal"})
        # 5. Warnings come from Jaeger's own storage; nothing here produces these.
        span["warnings"] = None
    trace["warnings"] = None
    return {
        "data": [shift_jaeger_trace(trace, offset_us)],
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }


async def test_jaegers_ui_model_fixture(client: httpx.AsyncClient) -> None:
    """ui_01.otlp.json (domain_01.json said in OTLP) reads back as ui_01.json: typed tags,
    big integers as strings, logs from events, CHILD_OF and FOLLOWS_FROM references from
    the parent and links, one process per service, and a 64-bit trace id printed as 16
    hex digits and found by them."""
    document, offset_us = shifted(load("ui_01.otlp.json"))
    await send_otlp(client, document)
    assert await _trace(client, "0000000000000001") == _ui_01_as_stored(offset_us)
    assert await _trace(client, "1") == _ui_01_as_stored(offset_us)
    assert await _trace(client, "0" * 31 + "1") == _ui_01_as_stored(offset_us)


async def test_otlp_specification_example(client: httpx.AsyncClient) -> None:
    """The OTLP specification's trace.json: scope → otel.scope.*, kind → span.kind, the
    (absent) parent → a CHILD_OF reference, the resource's service → the process."""
    document, offset_us = shifted(load("trace.json", EXAMPLES))
    await send_otlp(client, document)
    expected = load("otlp_example_trace.jaeger.json")
    expected["data"] = [shift_jaeger_trace(expected["data"][0], offset_us)]
    assert await _trace(client, "5b8efff798038103d269b633813fc60c") == expected


def _with_cost(node: Any, cost: float) -> Any:
    if isinstance(node, dict):
        return {key: _with_cost(value, cost) for key, value in node.items()}
    if isinstance(node, list):
        return [_with_cost(item, cost) for item in node]
    return cost if node == "$cost_usd" else node


async def test_an_assistant_turn_across_two_services(client: httpx.AsyncClient) -> None:
    """Our own golden: status → otel.status_code, error=true and otel.status_description;
    an exception and another event → logs in time order; a link → FOLLOWS_FROM; trace
    state; resource → process tags; arrays and floats typed as Jaeger types them; and the
    GenAI columns the span's attributes lack (the provider from gen_ai.system, the cost
    computed at ingest) as tags under their OpenTelemetry names."""
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    base_us = now_us() - 5 * 60_000_000
    await send_otlp(client, agent_trace(trace_id, base_us * 1000))
    native = (await client.get(f"/api/v1/traces/{trace_id}")).json()
    cost = next(span["gen_ai"]["cost_usd"] for span in native["spans"] if span["gen_ai"])
    assert cost > 0
    expected = _with_cost(load("agent_trace.jaeger.json"), cost)
    expected["data"] = [shift_jaeger_trace(expected["data"][0], base_us)]
    assert await _trace(client, trace_id) == expected


async def test_services_operations_and_dependencies(client: httpx.AsyncClient) -> None:
    """Each catalog answer of catalog_answers.json, after three assistant turns."""
    base_us = now_us() - 30 * 60_000_000
    for turn in range(3):
        trace_id = f"{turn + 1:032x}"
        await send_otlp(client, agent_trace(trace_id, (base_us + turn * 60_000_000) * 1000))
    for path, expected in load("catalog_answers.json").items():
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.json() == expected, path
