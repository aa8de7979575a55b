"""Property: whatever arrives at /v1/traces, /v1/logs or /v1/metrics, the answer is an OTLP
answer (200 with partial success, or 400/413/415 with a Status), never a 5xx."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import pytest
from api.fuzz.answers import PROTOBUF, otlp_answer
from api.fuzz.conftest import budget
from api.fuzz.otlp import SIGNALS, batches, json_with_junk, protobuf_body
from api.fuzz.values import dumps, mutated_bytes, mutated_json
from hypothesis import given
from hypothesis import strategies as st
from support import load_example, shift_to_now

JSON = "application/json"
EXAMPLES = {"traces": "trace.json", "logs": "logs.json", "metrics": "metrics.json"}


def send(http: httpx.Client, signal: str, body: bytes, media: str, **headers: str) -> None:
    response = http.post(f"/v1/{signal}", content=body, headers={"content-type": media, **headers})
    otlp_answer(response, signal, media)


@pytest.mark.parametrize("signal", SIGNALS)
def test_random_protobuf_batches(http: httpx.Client, examples: int, signal: str) -> None:
    @budget(examples)
    @given(batch=batches(signal, pb=True))
    def run(batch: dict[str, Any]) -> None:
        send(http, signal, protobuf_body(signal, batch), PROTOBUF)

    run()


@pytest.mark.parametrize("signal", SIGNALS)
def test_mutated_protobuf_batches(http: httpx.Client, examples: int, signal: str) -> None:
    @budget(examples)
    @given(data=st.data(), batch=batches(signal, pb=True))
    def run(data: st.DataObject, batch: dict[str, Any]) -> None:
        body = data.draw(mutated_bytes(protobuf_body(signal, batch)))
        send(http, signal, body, PROTOBUF)

    run()


@pytest.mark.parametrize("signal", SIGNALS)
def test_random_json_documents(http: httpx.Client, examples: int, signal: str) -> None:
    @budget(examples)
    @given(document=json_with_junk(signal))
    def run(document: Any) -> None:
        send(http, signal, dumps(document), JSON)

    run()


@pytest.mark.parametrize("signal", SIGNALS)
def test_mutated_specification_examples(http: httpx.Client, examples: int, signal: str) -> None:
    example = shift_to_now(load_example(EXAMPLES[signal]))

    @budget(examples)
    @given(document=mutated_json(example))
    def run(document: Any) -> None:
        send(http, signal, dumps(document), JSON)

    run()


@pytest.mark.parametrize("signal", SIGNALS)
def test_random_bytes_with_any_content_headers(
    http: httpx.Client, examples: int, signal: str
) -> None:
    media_types = st.sampled_from(
        [PROTOBUF, JSON, "application/json; charset=utf-8", "application/protobuf",
         "text/plain", "", "application/x-protobuf; proto=x", "*/*"]
    )  # fmt: skip
    encodings = st.sampled_from(["", "gzip", "deflate", "identity", "br", "gzip, gzip", "GZIP"])

    @budget(examples)
    @given(
        body=st.binary(max_size=300), media=media_types, encoding=encodings, zipped=st.booleans()
    )
    def run(body: bytes, media: str, encoding: str, zipped: bool) -> None:
        if zipped:
            body = gzip.compress(body)
        headers = {"content-encoding": encoding} if encoding else {}
        response = http.post(
            f"/v1/{signal}", content=body, headers={"content-type": media, **headers}
        )
        otlp_answer(response, signal, media)

    run()
