"""POST /v1/metrics on a real collector (spec example, SDK, outage), read back from the DB."""

from __future__ import annotations

import asyncio
import bisect
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from otlp_testkit import TcpProxy, via_proxy
from support import Collector, load_example, shift_to_now

from app.domain.metrics import series_id_of
from app.ingest.otlp_common import DecodeLimits
from app.ingest.otlp_metrics import decode_metrics_json

PROTOBUF = "application/x-protobuf"
KINDS = {
    "gauge": "gauge",
    "sum": "sum",
    "histogram": "histogram",
    "exponentialHistogram": "exponential_histogram",
    "summary": "summary",
}
# The SDK's default explicit bucket boundaries for histograms.
SDK_BOUNDS = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000]


def now_ns() -> int:
    # timestamptz keeps microseconds; whole microseconds come back exactly.
    return time.time_ns() // 1000 * 1000


def at(unix_nano: int | str) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(unix_nano) // 1000)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def stored(db: asyncpg.Connection, project: str, name: str | None = None) -> list[dict]:
    """Every point of the project (or of one metric) with its series, oldest first."""
    rows = await db.fetch(
        "SELECT s.name, s.type, s.unit, s.temporality, s.is_monotonic, s.description, "
        "s.service_name, s.attributes AS series_attributes, s.resource_attributes, s.scope, p.* "
        "FROM metric_points p JOIN metric_series s USING (project_id, series_id) "
        "JOIN projects pr ON pr.id = p.project_id "
        "WHERE pr.name = $1 AND ($2::text IS NULL OR s.name = $2) ORDER BY s.name, p.time",
        project,
        name,
    )
    result = []
    for row in rows:
        values = dict(row)
        for column in (
            "series_attributes",
            "resource_attributes",
            "scope",
            "quantiles",
            "exemplars",
        ):
            if values[column] is not None:
                values[column] = json.loads(values[column])
        result.append(values)
    return result


def attributes(key_values: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {kv["key"]: next(iter(kv["value"].values())) for kv in key_values or []}


# ---------------------------------------------------------------- the spec example


async def test_example_metrics_stored_intact(
    client: httpx.AsyncClient, db: asyncpg.Connection, project_name: str
) -> None:
    document = shift_to_now(load_example("metrics.json"), now_ns())
    response = await client.post("/v1/metrics", json=document)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}

    rows = {row["name"]: row for row in await stored(db, project_name)}
    resource_metrics = document["resourceMetrics"][0]
    scope = resource_metrics["scopeMetrics"][0]["scope"]
    metrics = resource_metrics["scopeMetrics"][0]["metrics"]
    assert set(rows) == {metric["name"] for metric in metrics}
    decoded = {
        point.stream.name: point
        for point in decode_metrics_json(document, DecodeLimits(0, 2**63)).items
    }
    for metric in metrics:
        row = rows[metric["name"]]
        key = next(key for key in KINDS if key in metric)
        data = metric[key]
        (point,) = data["dataPoints"]
        # The series: identity and descriptive fields, as sent.
        assert row["type"] == KINDS[key]
        assert (row["unit"], row["description"]) == (metric["unit"], metric["description"])
        assert row["temporality"] == data.get("aggregationTemporality", 0)
        assert row["is_monotonic"] is data.get("isMonotonic", False)
        assert row["service_name"] == "my.service"
        assert row["resource_attributes"] == attributes(resource_metrics["resource"]["attributes"])
        assert row["scope"] == {
            "name": scope["name"],
            "version": scope["version"],
            "attributes": attributes(scope["attributes"]),
            "schema_url": "",
        }
        assert row["series_attributes"] == attributes(point["attributes"])
        decoded_point = decoded[metric["name"]]
        assert row["series_id"] == series_id_of(decoded_point.stream, decoded_point.attributes)
        # The point: every value of the file.
        assert row["time"] == at(point["timeUnixNano"])
        start = point.get("startTimeUnixNano")
        assert row["start_time"] == (at(start) if start else None)
        assert row["flags"] == 0 and row["exemplars"] is None
        if key in ("gauge", "sum"):
            assert row["value"] == point["asDouble"]
            assert row["count"] is None and row["bucket_counts"] is None
            continue
        assert row["value"] is None
        assert row["count"] == int(point["count"])
        assert (row["sum"], row["min"], row["max"]) == (point["sum"], point["min"], point["max"])
        if key == "histogram":
            assert row["explicit_bounds"] == point["explicitBounds"]
            assert row["bucket_counts"] == [int(count) for count in point["bucketCounts"]]
            assert row["scale"] is None
        else:
            assert row["scale"] == point["scale"]
            assert row["zero_count"] == int(point["zeroCount"])
            assert row["zero_threshold"] == point["zeroThreshold"]
            assert row["positive_offset"] == point["positive"]["offset"]
            assert row["positive_bucket_counts"] == [
                int(count) for count in point["positive"]["bucketCounts"]
            ]
            # No negative buckets in the file: offset 0 and no counts, as protobuf reads it.
            assert (row["negative_offset"], row["negative_bucket_counts"]) == (0, [])
            assert row["explicit_bounds"] is None

    # The same export again, as protobuf: the same series, and no point twice.
    message = json_format.ParseDict(document, metrics_service_pb2.ExportMetricsServiceRequest())
    response = await client.post(
        "/v1/metrics", content=message.SerializeToString(), headers={"content-type": PROTOBUF}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PROTOBUF
    answer = metrics_service_pb2.ExportMetricsServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")
    again = await stored(db, project_name)
    assert len(again) == 4
    assert {row["series_id"] for row in again} == {row["series_id"] for row in rows.values()}


# ---------------------------------------------------------------- summary, exemplars, flags


def kvs(**values: str) -> list[dict[str, Any]]:
    return [{"key": key, "value": {"stringValue": value}} for key, value in values.items()]


def document(*metrics: dict[str, Any], **resource: str) -> dict[str, Any]:
    """One resource (its string attributes from keywords) and scope holding `metrics`."""
    block = {"resource": {"attributes": kvs(**resource)}, "scopeMetrics": [{"metrics": metrics}]}
    return {"resourceMetrics": [block]}


def point(when: int, **fields: Any) -> dict[str, Any]:
    return {"timeUnixNano": str(when), **fields}


async def test_summary_exemplars_and_flags_round_trip(
    client: httpx.AsyncClient, db: asyncpg.Connection, project_name: str
) -> None:
    now = now_ns()
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    exemplars = [
        point(now - 1000, asInt="12", traceId=trace_id.upper(), spanId=span_id),
        point(now - 2000, asDouble=0.5),
    ]
    exemplars[0]["filteredAttributes"] = kvs(**{"user.id": "u-7"})
    quantiles = [{"quantile": 0.5, "value": 2}, {"quantile": 0.99, "value": 4.5}]
    summary_point = point(now, count="4", sum=10.5, quantileValues=quantiles)
    summary_point["startTimeUnixNano"] = str(now - 60_000_000_000)
    sent = document(
        {"name": "retrieval.latency", "unit": "ms", "summary": {"dataPoints": [summary_point]}},
        {
            "name": "tokens.used",
            "sum": {
                "aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA",
                "isMonotonic": True,
                "dataPoints": [
                    point(now, asInt="300", exemplars=exemplars),
                    point(now + 1000, flags=1),  # no recorded value: a gap marker
                ],
            },
        },
        **{"service.name": "rag"},
    )
    response = await client.post("/v1/metrics", json=sent)
    assert response.status_code == 200, response.text
    assert response.json() == {}
    summary, counted, gap = await stored(db, project_name)
    assert summary["type"] == "summary" and summary["service_name"] == "rag"
    assert (summary["count"], summary["sum"]) == (4, 10.5)
    assert summary["quantiles"] == [
        {"quantile": 0.5, "value": 2.0},
        {"quantile": 0.99, "value": 4.5},
    ]
    assert summary["start_time"] == at(now - 60_000_000_000)
    assert (counted["type"], counted["temporality"], counted["is_monotonic"]) == ("sum", 1, True)
    assert counted["value"] == 300.0 and counted["flags"] == 0
    assert counted["exemplars"] == [
        {
            "time_unix_nano": now - 1000,
            "value": 12,
            "trace_id": trace_id,
            "span_id": span_id,
            "filtered_attributes": {"user.id": "u-7"},
        },
        {
            "time_unix_nano": now - 2000,
            "value": 0.5,
            "trace_id": None,
            "span_id": None,
            "filtered_attributes": {},
        },
    ]
    assert (gap["value"], gap["flags"], gap["series_id"]) == (None, 1, counted["series_id"])


# ---------------------------------------------------------------- redaction, rejects


async def test_secrets_are_redacted_before_the_series_identity(
    client: httpx.AsyncClient, db: asyncpg.Connection, project_name: str
) -> None:
    now = now_ns()

    def secret_point(secret: str, offset: int) -> dict[str, Any]:
        exemplar = point(now, asDouble=1, filteredAttributes=kvs(auth_token=secret))
        attributes = kvs(**{"db.password": secret, "route": "/chat"})
        return point(now + offset, asDouble=1, attributes=attributes, exemplars=[exemplar])

    points = [secret_point("hunter2-first", 0), secret_point("hunter2-second", 1000)]
    sent = document(
        {"name": "requests", "gauge": {"dataPoints": points}},
        **{"service.name": "bot", "api_key": "sk-live-resource-secret"},
    )
    response = await client.post("/v1/metrics", json=sent)
    assert response.status_code == 200, response.text
    rows = await stored(db, project_name)
    assert len(rows) == 2
    # Two secrets, one series: redaction happened before hashing.
    assert rows[0]["series_id"] == rows[1]["series_id"]
    assert rows[0]["series_attributes"] == {"db.password": "[REDACTED]", "route": "/chat"}
    assert rows[0]["resource_attributes"]["api_key"] == "[REDACTED]"
    assert rows[0]["exemplars"][0]["filtered_attributes"] == {"auth_token": "[REDACTED]"}
    leaked = await db.fetchval(
        "SELECT count(*) FROM metric_series s JOIN projects p ON p.id = s.project_id "
        "WHERE p.name = $1 AND (s.attributes::text LIKE '%hunter2%' "
        "OR s.resource_attributes::text LIKE '%sk-live%')",
        project_name,
    )
    assert leaked == 0


async def test_invalid_points_are_reported_and_the_rest_stored(
    client: httpx.AsyncClient, db: asyncpg.Connection, project_name: str
) -> None:
    now = now_ns()
    good = point(now, asDouble=3)
    bad_buckets = point(now, count="1", bucketCounts=["1"], explicitBounds=[1, 2])
    sent = document(
        {"name": "fine", "gauge": {"dataPoints": [good, {"asDouble": 1}]}},
        {"name": "old", "gauge": {"dataPoints": [point(1544712660300000000, asDouble=1)]}},
        {
            "name": "bad.histogram",
            "histogram": {"aggregationTemporality": 2, "dataPoints": [bad_buckets]},
        },
    )
    response = await client.post("/v1/metrics", json=sent)
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedDataPoints"] == "3"
    message = partial["errorMessage"]
    assert "metric 'fine': timeUnixNano is missing" in message
    assert "metric 'old': timeUnixNano 2018-12-13" in message
    assert "older than the 15d retention" in message
    assert "metric 'bad.histogram': bucketCounts has 1 entries but explicitBounds has 2" in message
    rows = await stored(db, project_name)
    assert [(row["name"], row["value"]) for row in rows] == [("fine", 3.0)]
    assert rows[0]["service_name"] == "unknown_service"


async def test_metrics_need_an_ingest_key(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.post("/v1/metrics", json={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


# ---------------------------------------------------------------- the OpenTelemetry SDK


class RecordingExporter(OTLPMetricExporter):
    """The real OTLP/HTTP exporter, remembering whether each export succeeded."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: list[MetricExportResult] = []

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
        result = super().export(metrics_data, timeout_millis, **kwargs)
        self.results.append(result)
        return result


def _latest(rows: list[dict], **series_attributes: Any) -> dict:
    matching = [row for row in rows if row["series_attributes"] == series_attributes]
    assert matching, (series_attributes, rows)
    return matching[-1]


async def test_python_sdk_counter_updown_histogram_gauge(
    collector: Collector, key: str, db: asyncpg.Connection, project_name: str
) -> None:
    exporter = RecordingExporter(endpoint=f"{collector.url}/v1/metrics", headers=auth(key))
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "assistant-sdk"}), metric_readers=[reader]
    )
    meter = provider.get_meter("assistant.sdk.test", "1.2.3")
    requests = meter.create_counter("llm.requests", unit="{request}", description="LLM calls")
    requests.add(3, {"model": "gpt-4o"})
    requests.add(2, {"model": "gpt-4o"})
    requests.add(1, {"model": "claude"})
    queue = meter.create_up_down_counter("queue.size")
    queue.add(5)
    queue.add(-2)
    latency = meter.create_histogram("llm.latency", unit="ms")
    recorded = [3, 7, 70, 700, 20000]
    for value in recorded:
        latency.record(value, {"model": "gpt-4o"})

    def fill(_: CallbackOptions) -> list[Observation]:
        return [Observation(0.75, {"cache": "prompt"})]

    meter.create_observable_gauge("cache.fill", callbacks=[fill])
    assert provider.force_flush(timeout_millis=30_000)
    provider.shutdown()
    assert exporter.results and set(exporter.results) == {MetricExportResult.SUCCESS}

    rows = await stored(db, project_name)
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        by_name.setdefault(row["name"], []).append(row)
    assert set(by_name) == {"llm.requests", "queue.size", "llm.latency", "cache.fill"}
    for row in rows:
        assert row["service_name"] == "assistant-sdk"
        assert row["scope"]["name"] == "assistant.sdk.test"
        assert row["scope"]["version"] == "1.2.3"

    gpt = _latest(by_name["llm.requests"], model="gpt-4o")
    claude = _latest(by_name["llm.requests"], model="claude")
    for row in (gpt, claude):
        # The SDK's default: cumulative temporality, counters monotonic.
        assert (row["type"], row["temporality"], row["is_monotonic"]) == ("sum", 2, True)
        assert (row["unit"], row["description"]) == ("{request}", "LLM calls")
        assert row["start_time"] is not None and row["start_time"] <= row["time"]
    assert (gpt["value"], claude["value"]) == (5.0, 1.0)
    assert gpt["series_id"] != claude["series_id"]

    size = _latest(by_name["queue.size"])
    assert (size["type"], size["temporality"], size["is_monotonic"]) == ("sum", 2, False)
    assert size["value"] == 3.0

    histogram = _latest(by_name["llm.latency"], model="gpt-4o")
    assert (histogram["type"], histogram["temporality"], histogram["unit"]) == (
        "histogram",
        2,
        "ms",
    )
    assert histogram["explicit_bounds"] == SDK_BOUNDS
    expected = [0] * (len(SDK_BOUNDS) + 1)
    for value in recorded:
        expected[bisect.bisect_left(SDK_BOUNDS, value)] += 1
    assert histogram["bucket_counts"] == expected
    assert histogram["count"] == len(recorded)
    assert (histogram["sum"], histogram["min"], histogram["max"]) == (
        float(sum(recorded)),
        3.0,
        20000.0,
    )

    fill_row = _latest(by_name["cache.fill"], cache="prompt")
    assert (fill_row["type"], fill_row["temporality"], fill_row["is_monotonic"]) == (
        "gauge",
        0,
        False,
    )
    assert fill_row["value"] == 0.75


# ---------------------------------------------------------------- database outage


def _gauge(name: str, when: int, **point_attributes: str) -> dict[str, Any]:
    gauge_point = point(when, asDouble=1, attributes=kvs(**point_attributes))
    return document({"name": name, "gauge": {"dataPoints": [gauge_point]}})


async def test_database_outage_answers_503_for_new_and_known_series(
    proxy: TcpProxy,
    database_url: str,
    start_collector: Callable[..., Collector],
    key: str,
    db: asyncpg.Connection,
    project_name: str,
) -> None:
    running = start_collector(
        database_url=via_proxy(database_url, proxy.port),
        env={"TELEMETRY_DB_CONNECT_TIMEOUT_S": "2", "TELEMETRY_RETRY_AFTER_S": "7"},
    )
    async with httpx.AsyncClient(base_url=running.url, headers=auth(key), timeout=30) as http:
        known = await http.post("/v1/metrics", json=_gauge("up", now_ns(), host="a"))
        assert known.status_code == 200, known.text
        proxy.stop()
        # A new series fails in registration, a known one in the writer: both answer 503.
        for document in (_gauge("up", now_ns(), host="b"), _gauge("up", now_ns(), host="a")):
            response = await http.post("/v1/metrics", json=document)
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "7"
            assert "database is unavailable" in response.json()["message"]
        proxy.start()
        deadline = time.monotonic() + 20
        while True:
            response = await http.post("/v1/metrics", json=_gauge("up", now_ns(), host="b"))
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        assert response.status_code == 200, response.text
    hosts = [row["series_attributes"]["host"] for row in await stored(db, project_name)]
    assert sorted(hosts) == ["a", "b"]
