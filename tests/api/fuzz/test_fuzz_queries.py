"""Property: whatever query string reaches a read endpoint, the answer is the endpoint's
documented shape or a 400/404 in the error shape, never a 5xx. The project holds data of
every kind first, so that queries reach the database and the math over what it returns."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from api.fuzz.answers import read_answer
from api.fuzz.conftest import budget
from api.fuzz.values import mutated_json, text, times
from hypothesis import given
from hypothesis import strategies as st
from support import load_example, shift_to_now

METRIC_NAMES = ["fuzz.gauge", "fuzz.counter", "fuzz.histogram"]
AGGREGATIONS = ["sum", "avg", "min", "max", "count", "rate", "p50", "p90", "p95", "p99"]


@dataclass
class Seeded:
    """What the project holds, to aim queries at: ids, names and real cursors."""

    trace_ids: list[str]
    fingerprints: list[str]
    metric_names: list[str]
    cursors: list[str]


def seed(http: httpx.Client) -> Seeded:
    now = time.time()
    trace_ids = [os.urandom(16).hex() for _ in range(3)]
    spans = [
        {"trace_id": trace_id, "span_id": os.urandom(8).hex(), "name": f"op{n}",
         "service": "fuzz", "kind": "server", "start_time": now - 60 * n, "duration_ms": 5 + n,
         "status": "error" if n else "ok",
         "attributes": {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10 * n,
                        "gen_ai.tool.name": "search", "n": n},
         "events": [{"name": "exception", "attributes": {"exception.type": "E", "n": n}}]}
        for n, trace_id in enumerate(trace_ids)
    ]  # fmt: skip
    logs = [{"timestamp": now - n, "message": f"log {n}", "service": "fuzz", "level": "warn",
             "trace_id": trace_ids[0], "attributes": {"n": n}} for n in range(3)]  # fmt: skip
    metrics = [
        {"name": name, "type": name.split(".")[1], "value": float(n), "timestamp": now - 30 * n,
         "attributes": {"n": n % 2}}
        for name in METRIC_NAMES for n in range(4)
    ]  # fmt: skip
    errors = [{"type": "FuzzError", "message": f"boom {n}", "service": "fuzz"} for n in range(2)]
    for kind, items in (("spans", spans), ("logs", logs), ("metrics", metrics), ("errors", errors)):
        assert http.post(f"/api/v1/ingest/{kind}", json={kind: items}).status_code == 200
    example = shift_to_now(load_example("metrics.json"))  # exponential histograms, summaries
    assert http.post("/v1/metrics", json=example).status_code == 200
    names = [metric["name"] for metric in http.get("/api/v1/metrics").json()["metrics"]]
    fingerprints = [group["fingerprint"] for group in http.get("/api/v1/errors").json()["errors"]]
    cursors = [
        http.get(path, params={"limit": 1}).json()["next_cursor"]
        for path in ("/api/v1/traces", "/api/v1/logs")
    ]
    return Seeded(trace_ids, fingerprints, names, [cursor for cursor in cursors if cursor])


def _cursor_text(document: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def cursors(seeded: Seeded) -> st.SearchStrategy[str]:
    real = st.sampled_from(seeded.cursors)
    decoded = [
        json.loads(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4))) for c in seeded.cursors
    ]
    forged = st.one_of(*(mutated_json(document) for document in decoded)).map(_cursor_text)
    return st.one_of(real, forged, forged, text())


def parameters(seeded: Seeded) -> dict[str, dict[str, st.SearchStrategy[str]]]:
    """Each read endpoint's parameters: plausible values, and anything else."""

    def choice(values: list[str]) -> st.SearchStrategy[str]:
        return st.one_of(st.sampled_from(values), text())

    numbers = st.one_of(st.integers(min_value=-5, max_value=2000).map(str), text())
    window = st.one_of(times().map(str), st.sampled_from(["now-1h", "now-2d", "now"]))
    cursor = cursors(seeded)
    common = {"start": window, "end": window}
    return {
        "/api/v1/traces": {**common, "service": choice(["fuzz"]), "name": choice(["op1"]),
                           "status": choice(["ok", "error", "unset"]), "limit": numbers,
                           "min_duration_ms": numbers, "max_duration_ms": numbers,
                           "cursor": cursor},
        "/api/v1/logs": {**common, "q": choice(["log", '"log 1"', "-log or x"]),
                         "level": choice(["warn", "ERROR", "trace"]), "service": choice(["fuzz"]),
                         "trace_id": choice(seeded.trace_ids), "limit": numbers, "cursor": cursor},
        "/api/v1/services": common,
        "/api/v1/metrics": {"name": choice(["fuzz", ""]), "limit": numbers},
        "/api/v1/metrics/query": {**common, "name": choice(seeded.metric_names),
                                  "agg": choice(AGGREGATIONS), "limit": numbers,
                                  "step": choice(["1s", "30s", "1m", "1h", "3650d", "1500ms"]),
                                  "group_by": choice(["n", "n,service.name", ""]),
                                  "type": choice(["gauge", "sum", "histogram", "summary",
                                                  "exponential_histogram"])},
        "/api/v1/errors": {**common, "status": choice(["unresolved", "resolved"]),
                           "service": choice(["fuzz"]), "limit": numbers,
                           "sort": choice(["count", "first_seen", "last_seen"])},
        "/api/v1/errors/{fingerprint}": {**common, "events": numbers},
        "/api/v1/traces/{trace_id}": {},
        "/api/v1/dashboard/overview": {"window": choice(["1h", "1m", "31d", "32d"]),
                                       "service": choice(["fuzz"])},
        "/api/v1/dashboard/llm": {"window": choice(["1h", "5m", "30d"]),
                                  "service": choice(["fuzz"])},
    }  # fmt: skip


def queries(seeded: Seeded, route: str) -> st.SearchStrategy[tuple[str, list[tuple[str, str]]]]:
    """(path, parameters) for `route`: some of its parameters, now and then a repeated or
    unknown one, and attribute filters for the searches."""
    known = parameters(seeded)[route]
    pairs = st.sampled_from(sorted(known)).flatmap(
        lambda name: known[name].map(lambda value: (name, value))
    ) if known else st.nothing()  # fmt: skip
    attributes = st.tuples(st.one_of(st.just("n"), text()).map("attr.".__add__), text())
    extra = st.tuples(text(), text())
    chosen = st.lists(st.one_of(pairs, pairs, pairs, attributes, extra), max_size=6)
    path = st.just(route)
    # "." and ".." are path segments the client resolves away, never an id sent.
    any_id = text().filter(lambda value: value not in ("", ".", ".."))
    if "{trace_id}" in route:
        ids = st.one_of(st.sampled_from(seeded.trace_ids), any_id)
        path = ids.map(lambda value: route.replace("{trace_id}", quote(value, safe="")))
    elif "{fingerprint}" in route:
        ids = st.one_of(st.sampled_from(seeded.fingerprints), any_id)
        path = ids.map(lambda value: route.replace("{fingerprint}", quote(value, safe="")))
    return st.tuples(path, chosen)


ROUTES = [
    "/api/v1/traces",
    "/api/v1/traces/{trace_id}",
    "/api/v1/logs",
    "/api/v1/services",
    "/api/v1/metrics",
    "/api/v1/metrics/query",
    "/api/v1/errors",
    "/api/v1/errors/{fingerprint}",
    "/api/v1/dashboard/overview",
    "/api/v1/dashboard/llm",
]


@pytest.fixture
def seeded(http: httpx.Client) -> Seeded:
    return seed(http)


@pytest.mark.parametrize("route", ROUTES)
def test_random_query_strings(
    http: httpx.Client, seeded: Seeded, examples: int, route: str
) -> None:
    @budget(examples)
    @given(query=queries(seeded, route))
    def run(query: tuple[str, list[tuple[str, str]]]) -> None:
        path, params = query
        read_answer(http.get(path, params=params), route)

    run()
