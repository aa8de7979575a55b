"""A full writer queue answers 503 with Retry-After at once, and nothing it refused is stored."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from otlp_testkit import simple_span, span_counts, traces_pb

PROTOBUF = {"Content-Type": "application/x-protobuf"}


async def test_saturated_writer_refuses_without_losing_acknowledged_spans(
    start_collector, make_key, db
) -> None:
    collector = start_collector(env={"TELEMETRY_WRITER_MAX_QUEUED_ROWS": "600"})
    key = await make_key(f"pressure-{uuid.uuid4().hex[:6]}", "ingest")
    answers: dict[str, httpx.Response] = {}

    async def send(http: httpx.AsyncClient) -> None:
        trace_id = uuid.uuid4().hex
        body = traces_pb([simple_span(trace_id) for _ in range(512)]).SerializeToString()
        answers[trace_id] = await http.post("/v1/traces", content=body, headers=PROTOBUF)

    async with httpx.AsyncClient(
        base_url=collector.url, headers={"x-api-key": key}, timeout=60
    ) as http:
        # More concurrent 512-span requests than 600 queued rows can hold: some must wait
        # for a flush that has not happened yet, and those are refused, not buffered.
        for _ in range(10):
            await asyncio.gather(*(send(http) for _ in range(12)))
            if any(answer.status_code == 503 for answer in answers.values()):
                break

    refused = {t: a for t, a in answers.items() if a.status_code == 503}
    accepted = {t for t, a in answers.items() if a.status_code == 200}
    assert refused, "no request was refused; the queue bound did not apply"
    assert accepted
    assert set(refused) | accepted == set(answers)
    for answer in refused.values():
        assert answer.headers["Retry-After"] == "5"
        assert answer.headers["content-type"] == "application/x-protobuf"
    stored = await span_counts(db, answers)
    assert {trace_id: stored.get(trace_id) for trace_id in accepted} == dict.fromkeys(accepted, 512)
    assert not set(refused) & set(stored)
