"""/healthz, /readyz and /metrics (Prometheus text), also summed across worker processes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from otlp_testkit import DAY_NS, JSON, PROTOBUF, simple_span, traces_json, traces_pb
from prometheus_client.parser import text_string_to_metric_families
from support import Collector

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every sample of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(
        value
        for (sample_name, sample_labels), value in samples.items()
        if sample_name == name and wanted <= set(sample_labels)
    )


async def _scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    # The Prometheus text format (0.0.4, or 1.0.0 from newer prometheus_client releases).
    media, _, parameters = response.headers["content-type"].partition(";")
    assert media == "text/plain"
    assert "version=" in parameters
    return _samples(response.text)


async def test_healthz(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok"}


async def test_readyz(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "schema": "ok"}}


async def test_request_id_is_echoed(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/healthz", headers={"x-request-id": "trace-me-123"})
    assert response.headers["x-request-id"] == "trace-me-123"
    generated = await anonymous.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32


async def test_metrics_count_ingest(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    before = await _scrape(anonymous)

    old = simple_span(age_ns=30 * DAY_NS)
    response = await client.post(
        "/v1/traces", json=traces_json([simple_span(), simple_span(), old])
    )
    assert response.status_code == 200, response.text
    assert int(response.json()["partialSuccess"]["rejectedSpans"]) == 1
    response = await client.post(
        "/v1/traces",
        content=traces_pb([simple_span()]).SerializeToString(),
        headers={"content-type": PROTOBUF},
    )
    assert response.status_code == 200, response.text
    response = await client.post("/v1/traces", content=b"{", headers={"content-type": JSON})
    assert response.status_code == 400

    after = await _scrape(anonymous)
    requests = "telemetry_ingest_requests_total"
    items = "telemetry_ingest_items_total"

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta(requests, signal="traces", protocol="json", outcome="ok") == 1
    assert delta(requests, signal="traces", protocol="protobuf", outcome="ok") == 1
    assert delta(requests, signal="traces", protocol="json", outcome="rejected") == 1
    assert delta(items, signal="traces", outcome="accepted") == 3
    assert delta(items, signal="traces", outcome="rejected") == 1
    # Spans were just committed: the ingest lag is the time since then, derived per scrape.
    lag = _value(after, "telemetry_ingest_lag_seconds", signal="spans")
    assert 0 <= lag < 60
    assert ("telemetry_ingest_lag_seconds", (("signal", "spans"),)) in after
    # The writer and the HTTP histogram moved too.
    assert _total(after, "telemetry_writer_batch_rows_count") > _total(
        before, "telemetry_writer_batch_rows_count"
    )
    route_count = "telemetry_http_request_duration_seconds_count"
    assert (
        _total(after, route_count, route="/v1/traces", status="2xx")
        - _total(before, route_count, route="/v1/traces", status="2xx")
        == 2
    )
    assert (
        _total(after, route_count, route="/v1/traces", status="4xx")
        - _total(before, route_count, route="/v1/traces", status="4xx")
        == 1
    )


async def test_metrics_pass_promtool(anonymous: httpx.AsyncClient) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH")
    response = await anonymous.get("/metrics")
    result = subprocess.run(  # noqa: ASYNC221 - a short local check
        [promtool, "check", "metrics"], input=response.content, capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _worker_counter_files(collector: Collector) -> set[str]:
    """prometheus_client's per-process counter files of a multi-worker collector."""
    assert collector.process is not None
    pid = collector.process.pid
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        child_pids = children.read().split()
    for child in child_pids:
        with open(f"/proc/{child}/environ", "rb") as environ:
            for entry in environ.read().split(b"\0"):
                name, _, value = entry.partition(b"=")
                if name == b"PROMETHEUS_MULTIPROC_DIR":
                    directory = Path(value.decode())
                    return {path.name for path in directory.glob("counter_*.db")}
    return set()


async def test_metrics_add_up_across_workers(
    start_collector: Callable[..., Collector], key: str
) -> None:
    pair = start_collector(workers=2)
    spans_per_request = 3
    burst = 12
    sent = 0

    async def send() -> None:
        # A new connection each, sent together, so both workers take some.
        async with httpx.AsyncClient(
            base_url=pair.url, headers={"Authorization": f"Bearer {key}"}
        ) as http:
            body = traces_json([simple_span() for _ in range(spans_per_request)])
            response = await http.post("/v1/traces", json=body)
            assert response.status_code == 200, response.text
            assert response.json() == {}

    # Which process accepts a connection is up to the kernel: send bursts until both have
    # counted some (visible on Linux as one prometheus_client file per process).
    for _ in range(10):
        await asyncio.gather(*(send() for _ in range(burst)))
        sent += burst
        if sys.platform != "linux" or len(_worker_counter_files(pair)) == 2:
            break
    if sys.platform == "linux":
        assert len(_worker_counter_files(pair)) == 2, "one worker took every request"
    totals = set()
    for _ in range(6):
        async with httpx.AsyncClient(base_url=pair.url) as http:
            samples = await _scrape(http)
        totals.add(
            (
                _value(
                    samples,
                    "telemetry_ingest_requests_total",
                    signal="traces",
                    protocol="json",
                    outcome="ok",
                ),
                _value(
                    samples, "telemetry_ingest_items_total", signal="traces", outcome="accepted"
                ),
            )
        )
    # Whichever worker answers the scrape, it reports the sum over both processes.
    assert totals == {(sent, sent * spans_per_request)}
    # ... and the newest commit over both processes, as the ingest lag.
    assert 0 <= _value(samples, "telemetry_ingest_lag_seconds", signal="spans") < 60
