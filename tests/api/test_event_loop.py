"""A large batch is decoded off the event loop: health checks keep answering meanwhile."""

from __future__ import annotations

import asyncio
import time

import httpx
from otlp_testkit import PROTOBUF, simple_span, traces_pb
from support import Collector


async def test_health_checks_answer_while_a_large_batch_is_decoded(
    collector: Collector, client: httpx.AsyncClient
) -> None:
    trace = simple_span().trace_id
    spans = [simple_span(trace, name=f"step {index}") for index in range(30_000)]
    for span in spans:
        span.attributes = {"note": "x" * 150, "index": 1}
    body = traces_pb(spans).SerializeToString()
    assert len(body) > 7_000_000
    latencies: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            started = time.perf_counter()
            # A new connection each time, as a liveness probe makes them; a bare socket, so
            # that the client's own costs (an httpx client builds an SSL context) stay out.
            reader, writer = await asyncio.open_connection("127.0.0.1", collector.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 30)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)

    probing = asyncio.create_task(probe())
    started = time.perf_counter()
    response = await client.post("/v1/traces", content=body, headers={"content-type": PROTOBUF})
    took = time.perf_counter() - started
    done.set()
    await probing
    assert response.status_code == 200, response.text
    # Decoding and building the rows of 30,000 spans takes seconds of CPU. On the event
    # loop, some probe would wait for most of that; off it, each waits a few switch
    # intervals. The bound is relative, so a slow machine does not fail it.
    assert len(latencies) >= 5
    assert max(latencies) < took / 4, (max(latencies), took)
