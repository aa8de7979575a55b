"""Property: whatever native items arrive at /api/v1/ingest/*, each is accepted or rejected
alone (`accepted` + `rejected` = items sent), or a malformed body is a 4xx; never a 5xx."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx
import pytest
from api.fuzz.answers import native_answer
from api.fuzz.conftest import budget
from api.fuzz.values import NOW_NS, dumps, json_values, numbers, text, times
from hypothesis import given
from hypothesis import strategies as st

KINDS = ("spans", "logs", "metrics", "errors")


def _hex(size: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.binary(min_size=size, max_size=size).map(bytes.hex),
        st.binary(min_size=size, max_size=size).map(bytes.hex),
        text(),
    )


@cache
def _fields(kind: str) -> dict[str, st.SearchStrategy[Any]]:
    """Each field of the kind's item: a plausible value most of the time, anything else
    (another type, a hostile string or number, deep nesting) the rest."""
    anything = json_values()
    attributes = st.one_of(
        st.dictionaries(text(), json_values(), max_size=4),
        st.dictionaries(text(), json_values(), max_size=4),
        anything,
    )
    plausible: dict[str, dict[str, st.SearchStrategy[Any]]] = {
        "spans": {
            "trace_id": _hex(16),
            "span_id": _hex(8),
            "parent_span_id": _hex(8),
            "name": text(),
            "service": text(),
            "kind": st.sampled_from(["internal", "server", "client", "sideways"]),
            "start_time": times(),
            "end_time": times(),
            "duration_ms": numbers(),
            "status": st.sampled_from(["unset", "ok", "error", "fine"]),
            "status_message": text(),
            "attributes": attributes,
            "events": st.lists(
                st.fixed_dictionaries(
                    {"name": text()}, optional={"time": times(), "attributes": attributes}
                ),
                max_size=3,
            ),  # fmt: skip
        },
        "logs": {
            "timestamp": times(),
            "level": st.sampled_from(["trace", "debug", "info", "warn", "error", "fatal", "x"]),
            "message": text(),
            "service": text(),
            "trace_id": _hex(16),
            "span_id": _hex(8),
            "attributes": attributes,
            "error": st.fixed_dictionaries(
                {"type": text()}, optional={"message": text(), "stack": text()}
            ),
        },
        "metrics": {
            "name": text(),
            "type": st.sampled_from(["counter", "gauge", "histogram", "summary"]),
            "value": numbers(),
            "timestamp": times(),
            "unit": text(),
            "attributes": attributes,
            "service": text(),
        },
        "errors": {
            "type": text(),
            "message": text(),
            "stack": st.one_of(text(), st.lists(st.dictionaries(text(), json_values()))),
            "service": text(),
            "timestamp": times(),
            "trace_id": _hex(16),
            "span_id": _hex(8),
            "attributes": attributes,
            "fingerprint": st.one_of(text(), st.lists(text(), max_size=40)),
        },
    }
    return {
        name: st.one_of(value, value, value, anything) for name, value in plausible[kind].items()
    }


@cache
def items(kind: str) -> st.SearchStrategy[Any]:
    fields = _fields(kind)
    valid_core = {
        "spans": {"start_time": st.just(NOW_NS / 1e9), "duration_ms": st.just(1)},
        "logs": {"timestamp": st.just(NOW_NS / 1e9), "service": st.just("fuzz")},
        "metrics": {"name": st.just("fuzz.native"), "type": st.just("gauge")},
        "errors": {"type": st.just("FuzzError"), "service": st.just("fuzz")},
    }[kind]
    others = {name: value for name, value in fields.items() if name not in valid_core}
    mostly_valid = st.fixed_dictionaries(valid_core, optional=others)
    return st.one_of(st.fixed_dictionaries({}, optional=fields), mostly_valid, json_values())


@cache
def documents(kind: str) -> st.SearchStrategy[Any]:
    batch = st.fixed_dictionaries({kind: st.lists(items(kind), max_size=5)})
    return st.one_of(batch, batch, batch, json_values())


@pytest.mark.parametrize("kind", KINDS)
def test_random_native_items(http: httpx.Client, examples: int, kind: str) -> None:
    @budget(examples)
    @given(document=documents(kind))
    def run(document: Any) -> None:
        response = http.post(
            f"/api/v1/ingest/{kind}",
            content=dumps(document),
            headers={"content-type": "application/json"},
        )
        native_answer(response, kind, document)

    run()
