"""Overload is refused before the work: the in-flight byte budget answers 503 (native: 429)
with Retry-After before a body is read, and the connection stays usable for the next request."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import orjson
from google.rpc import code_pb2, status_pb2
from otlp_testkit import PROTOBUF, gzip_bytes, simple_span, stored_span_ids, traces_pb
from support import Collector, RawHttp

# Each identity byte is reserved 11 times (the body plus the decoded estimate, see
# app/ingest/admission.py): a 60 KB body holds 660 KB of a 1 MB budget, so two do not fit.
BUDGET = 1_000_000


def _batch(spans: int) -> tuple[bytes, str]:
    trace = simple_span().trace_id
    body = traces_pb(
        [simple_span(trace, name=f"step {index} " + "x" * 200) for index in range(spans)]
    )
    return body.SerializeToString(), trace


async def _until_held(collector: Collector, at_least: int) -> None:
    """Wait until requests in flight hold `at_least` bytes of the budget."""
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient(base_url=collector.url) as http:
        while time.monotonic() < deadline:
            text = (await http.get("/metrics")).text
            held = re.search(r"^telemetry_ingest_inflight_bytes ([0-9.e+]+)$", text, re.M)
            if held and float(held.group(1)) >= at_least:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the held request never reserved its bytes")


def _headers(key: str, body: bytes, **more: str) -> dict[str, str]:
    return {
        "Content-Type": PROTOBUF,
        "Content-Length": str(len(body)),
        "Authorization": f"Bearer {key}",
        **more,
    }


async def test_overload_is_refused_before_the_body_is_read(
    start_collector: Callable[..., Collector],
    make_key: Callable[..., Any],
    project_name: str,
    db: asyncpg.Connection,
) -> None:
    collector = start_collector(
        env={"TELEMETRY_MAX_INFLIGHT_BYTES": str(BUDGET), "TELEMETRY_RETRY_AFTER_S": "3"}
    )
    key = await make_key(project_name, "ingest")
    held_body, held_trace = _batch(220)
    refused_body, refused_trace = _batch(220)
    small_body, small_trace = _batch(1)
    assert 11 * len(held_body) < BUDGET < 22 * len(held_body)

    # A request whose body is still arriving holds its reservation.
    held = RawHttp(collector.port)
    held.send(held.head("POST", "/v1/traces", _headers(key, held_body)) + held_body[:1000])
    await _until_held(collector, 11 * len(held_body))

    # Only the head of the next one is sent: the answer must come without its body.
    refused = RawHttp(collector.port)
    refused.send(refused.head("POST", "/v1/traces", _headers(key, refused_body)))
    answer = refused.response()
    assert answer.status == 503
    assert answer.headers["retry-after"] == "3"
    assert answer.headers["content-type"] == PROTOBUF
    status = status_pb2.Status.FromString(answer.body)
    assert status.code == code_pb2.UNAVAILABLE
    assert "saturated" in status.message
    # The client sends the body anyway, as HTTP/1.1 requires; the connection stays usable
    # and a request that fits the budget is taken on it.
    refused.send(refused_body)
    after = refused.request("POST", "/v1/traces", small_body, _headers(key, small_body))
    assert after.status == 200, after.body

    # Native ingest answers its saturation 429 the same way, before reading.
    native = RawHttp(collector.port)
    document = orjson.dumps({"spans": [{"name": "x" * 100_000}]})
    native.send(
        native.head(
            "POST",
            "/api/v1/ingest/spans",
            {**_headers(key, document), "Content-Type": "application/json"},
        )
    )
    answer = native.response()
    assert answer.status == 429
    assert answer.headers["retry-after"] == "3"
    assert orjson.loads(answer.body)["error"]["code"] == "too_many_requests"

    held.send(held_body[1000:])
    assert held.response().status == 200
    for connection in (held, refused, native):
        connection.close()

    # Alone, a request larger than the whole budget is still taken: none waits for ever.
    large_body, large_trace = _batch(500)
    assert 11 * len(large_body) > BUDGET
    alone = RawHttp(collector.port)
    assert alone.request("POST", "/v1/traces", large_body, _headers(key, large_body)).status == 200
    alone.close()

    stored = {
        trace: len(await stored_span_ids(db, project_name, [trace]))
        for trace in (held_trace, refused_trace, small_trace, large_trace)
    }
    assert stored == {held_trace: 220, refused_trace: 0, small_trace: 1, large_trace: 500}


async def test_chunked_and_compressed_bodies_are_refused_as_they_grow(
    start_collector: Callable[..., Collector],
    make_key: Callable[..., Any],
    project_name: str,
    db: asyncpg.Connection,
) -> None:
    collector = start_collector(env={"TELEMETRY_MAX_INFLIGHT_BYTES": str(BUDGET)})
    key = await make_key(project_name, "ingest")
    held_body, held_trace = _batch(220)
    chunked_body, chunked_trace = _batch(220)
    held = RawHttp(collector.port)
    held.send(held.head("POST", "/v1/traces", _headers(key, held_body)) + held_body[:1000])
    await _until_held(collector, 11 * len(held_body))

    chunked = RawHttp(collector.port)
    head = {"Content-Type": PROTOBUF, "Authorization": f"Bearer {key}"}
    chunked.send(chunked.head("POST", "/v1/traces", {**head, "Transfer-Encoding": "chunked"}))
    for offset in range(0, len(chunked_body), 8192):
        piece = chunked_body[offset : offset + 8192]
        chunked.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    chunked.send(b"0\r\n\r\n")
    assert chunked.response().status == 503

    # Small on the wire, large once inflated: refused when decompression adds its share.
    gzipped_body, gzipped_trace = _batch(220)
    packed = gzip_bytes(gzipped_body)
    assert 11 * len(packed) + 11 * len(held_body) < BUDGET
    inflated = RawHttp(collector.port)
    headers = {**_headers(key, packed), "Content-Encoding": "gzip"}
    assert inflated.request("POST", "/v1/traces", packed, headers).status == 503

    held.send(held_body[1000:])
    assert held.response().status == 200
    for connection in (held, chunked, inflated):
        connection.close()
    assert len(await stored_span_ids(db, project_name, [held_trace])) == 220
    assert await stored_span_ids(db, project_name, [chunked_trace, gzipped_trace]) == []
