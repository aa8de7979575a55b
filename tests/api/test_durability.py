"""A 200 means committed: client retries are stored once, and SIGKILL loses no acknowledged span."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest
from otlp_testkit import (
    PROTOBUF,
    SpanSpec,
    new_trace_id,
    simple_span,
    stored_span_ids,
    traces_json,
    traces_pb,
)
from support import Collector, table_locked, wait_for_lock_waiters

from app import shutdown


def _batch(count: int, trace_id: str | None = None) -> list[SpanSpec]:
    trace_id = trace_id or new_trace_id()
    return [simple_span(trace_id, name=f"step {index}") for index in range(count)]


async def _post(client: httpx.AsyncClient, spans: list[SpanSpec], encoding: str) -> None:
    if encoding == "json":
        response = await client.post("/v1/traces", json=traces_json(spans))
        assert response.status_code == 200, response.text
        assert response.json() == {}
    else:
        response = await client.post(
            "/v1/traces",
            content=traces_pb(spans).SerializeToString(),
            headers={"content-type": PROTOBUF},
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == PROTOBUF
        assert response.content == b""


# ---------------------------------------------------------------- idempotency


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
async def test_retried_batch_is_stored_once(
    client: httpx.AsyncClient, db: asyncpg.Connection, project_name: str, encoding: str
) -> None:
    spans = _batch(5)
    await _post(client, spans, encoding)
    await _post(client, spans, encoding)
    stored = await stored_span_ids(db, project_name, [spans[0].trace_id])
    assert stored == sorted(span.span_id for span in spans)
    trace = (await client.get(f"/api/v1/traces/{spans[0].trace_id}")).json()
    assert trace["span_count"] == 5


async def test_overlapping_retry_adds_only_new_spans(
    client: httpx.AsyncClient, db: asyncpg.Connection, project_name: str
) -> None:
    first, second, third = _batch(3)
    await _post(client, [first, second], "json")
    await _post(client, [second, third], "protobuf")
    stored = await stored_span_ids(db, project_name, [first.trace_id])
    assert stored == sorted([first.span_id, second.span_id, third.span_id])


async def test_duplicates_within_one_request_are_stored_once(
    client: httpx.AsyncClient, db: asyncpg.Connection, project_name: str
) -> None:
    span = simple_span()
    await _post(client, [span, span, span], "json")
    assert await stored_span_ids(db, project_name, [span.trace_id]) == [span.span_id]


async def test_concurrent_retries_are_stored_once(
    collector: Collector, key: str, db: asyncpg.Connection, project_name: str
) -> None:
    spans = _batch(20)

    async def send() -> None:
        # Separate connections, so the copies can land in one group commit.
        async with httpx.AsyncClient(
            base_url=collector.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            await _post(http, spans, "protobuf")

    await asyncio.gather(*(send() for _ in range(8)))
    stored = await stored_span_ids(db, project_name, [spans[0].trace_id])
    assert stored == sorted(span.span_id for span in spans)


# ---------------------------------------------------------------- SIGKILL


@dataclass
class _Outcomes:
    acked: list[list[str]] = field(default_factory=list)
    acked_traces: list[str] = field(default_factory=list)
    failed_traces: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set once this many requests were acknowledged: time to pull the plug.
    target: int = 150
    enough: threading.Event = field(default_factory=threading.Event)


def _stream(url: str, key: str, outcomes: _Outcomes, stop: threading.Event) -> None:
    """Send batches until the collector stops answering; record what got a 200."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        while not stop.is_set():
            spans = _batch(25)
            trace_id = spans[0].trace_id
            try:
                response = http.post(
                    "/v1/traces",
                    content=traces_pb(spans).SerializeToString(),
                    headers={"content-type": PROTOBUF},
                )
            except httpx.HTTPError:
                with outcomes.lock:
                    outcomes.errors += 1
                    outcomes.failed_traces.append(trace_id)
                return
            with outcomes.lock:
                outcomes.statuses[response.status_code] = (
                    outcomes.statuses.get(response.status_code, 0) + 1
                )
                if response.status_code == 200:
                    outcomes.acked.append([span.span_id for span in spans])
                    outcomes.acked_traces.append(trace_id)
                    if len(outcomes.acked) >= outcomes.target:
                        outcomes.enough.set()
                else:
                    outcomes.failed_traces.append(trace_id)


async def _stream_until(victim: Collector, key: str, end: Callable[[], object]) -> _Outcomes:
    """Six clients stream batches until `end()` (run once 150 were acknowledged) stops the
    collector; each client stops at its first failed request."""
    outcomes = _Outcomes()
    stop = threading.Event()
    threads = [
        threading.Thread(target=_stream, args=(victim.url, key, outcomes, stop), daemon=True)
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    assert await asyncio.to_thread(outcomes.enough.wait, 30)
    await asyncio.to_thread(end)
    for thread in threads:
        await asyncio.to_thread(thread.join, 30)
    stop.set()
    assert not any(thread.is_alive() for thread in threads)
    assert len(outcomes.acked) >= outcomes.target
    # Every thread's last request met the stopped collector.
    assert outcomes.errors == len(threads)
    return outcomes


async def _assert_acknowledged_stored(
    db: asyncpg.Connection,
    project_name: str,
    outcomes: _Outcomes,
    record_property: Callable[[str, object], None],
    how: str,
) -> None:
    acked_spans = sorted(span_id for batch in outcomes.acked for span_id in batch)
    stored = await stored_span_ids(db, project_name, outcomes.acked_traces)
    in_flight_stored = await stored_span_ids(db, project_name, outcomes.failed_traces)
    record_property("acked_requests", len(outcomes.acked))
    record_property("failed_requests", len(outcomes.failed_traces))
    record_property("failed_but_stored_spans", len(in_flight_stored))
    print(
        f"{how}: {len(outcomes.acked)} requests answered 200 ({len(acked_spans)} spans), "
        f"{len(outcomes.failed_traces)} failed ({outcomes.errors} connection errors, "
        f"statuses {outcomes.statuses}); {len(in_flight_stored)} spans of failed requests "
        "were committed anyway"
    )
    assert stored == acked_spans
    # A request is stored whole or not at all (one transaction per group commit).
    assert len(in_flight_stored) % 25 == 0


async def test_sigkill_loses_no_acknowledged_span(
    start_collector: Callable[..., Collector],
    key: str,
    db: asyncpg.Connection,
    project_name: str,
    record_property: Callable[[str, object], None],
) -> None:
    victim = start_collector()
    outcomes = await _stream_until(victim, key, victim.kill)
    await _assert_acknowledged_stored(db, project_name, outcomes, record_property, "SIGKILL")


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_answers_what_is_in_flight_and_exits_0(
    start_collector: Callable[..., Collector],
    key: str,
    db: asyncpg.Connection,
    project_name: str,
    record_property: Callable[[str, object], None],
    workers: int,
) -> None:
    victim = start_collector(workers=workers)
    outcomes = await _stream_until(victim, key, victim.stop)
    assert victim.process is not None
    assert victim.process.returncode == 0, "a clean shutdown exits 0"
    # Requests in flight when the signal came were answered, not cut off: the only answers
    # are 200s (and 503s, should the writer not finish in time), never a 5xx of a bug.
    assert set(outcomes.statuses) <= {200, 503}
    await _assert_acknowledged_stored(db, project_name, outcomes, record_property, "SIGTERM")


def _stop_with_a_starved_loop(victim: Collector) -> None:
    """SIGTERM, then the process stopped from before the give-up deadline (GIVE_UP_S) to
    after the server's graceful deadline (GRACEFUL_S): on waking, its loop meets both in
    one turn, as a loop starved of CPU for seconds would."""
    assert victim.process is not None
    group = victim.process.pid
    os.killpg(group, signal.SIGTERM)
    time.sleep(shutdown.GIVE_UP_S - 1)
    os.killpg(group, signal.SIGSTOP)
    time.sleep(shutdown.GRACEFUL_S - shutdown.GIVE_UP_S + 2)
    os.killpg(group, signal.SIGCONT)
    victim.process.wait(timeout=15)


@pytest.mark.parametrize(
    ("path", "starved"),
    [("/v1/traces", False), ("/api/v1/ingest/spans", False), ("/v1/traces", True)],
    ids=["otlp", "native", "otlp, loop starved past both deadlines"],
)
async def test_a_batch_still_waiting_when_shutdown_ends_gets_503_not_500(
    start_collector: Callable[..., Collector],
    key: str,
    database_url: str,
    db: asyncpg.Connection,
    project_name: str,
    path: str,
    starved: bool,
) -> None:
    """uvicorn cancels what is still running when its graceful wait ends (a 500 for a request
    that had not answered): an ingest request whose batch cannot commit gives up first and
    answers 503 with Retry-After, and the process still exits 0. When the loop meets both
    deadlines in one turn, the server's cancellation is answered with that 503 too."""
    victim = start_collector(
        env={"TELEMETRY_DB_STATEMENT_TIMEOUT_S": "60", "TELEMETRY_WORKERS_ENABLED": "false"}
    )
    span = simple_span()
    if path == "/v1/traces":
        body = traces_pb([span]).SerializeToString()
        request = {"content": body, "headers": {"content-type": PROTOBUF}}
    else:
        native = {"trace_id": span.trace_id, "span_id": span.span_id, "name": "stuck",
                  "service": "shutdown", "start_time": "now-1s", "duration_ms": 5}  # fmt: skip
        request = {"json": {"spans": [native]}}
    async with table_locked(database_url, "spans"):
        async with httpx.AsyncClient(
            base_url=victim.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            answer = asyncio.ensure_future(http.post(path, **request))
            await wait_for_lock_waiters(db, 1)  # its flush waits for the lock
            stop = _stop_with_a_starved_loop if starved else Collector.stop
            stopping = asyncio.ensure_future(asyncio.to_thread(stop, victim))
            response = await answer
    await stopping
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert "shutting down" in response.text
    assert victim.process is not None and victim.process.returncode == 0
