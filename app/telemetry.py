"""The collector's own health: Prometheus metrics (multiprocess-aware) and JSON logging."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric

# With `serve --workers N` every process writes its samples under this directory and
# /metrics sums them (prometheus_client's multiprocess mode), so the figures add up.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}")
_request_log = logging.getLogger("app")  # the logger RequestContext has always written to

INGEST_REQUESTS = Counter(
    "telemetry_ingest_requests_total",
    "Ingest requests by signal, protocol and outcome.",
    ["signal", "protocol", "outcome"],
)
INGEST_ITEMS = Counter(
    "telemetry_ingest_items_total",
    "Spans, log records, metric points and error events received, by outcome "
    "(accepted, rejected, failed).",
    ["signal", "outcome"],
)
REQUEST_DURATION = Histogram(
    "telemetry_http_request_duration_seconds",
    "HTTP request duration by route and status class.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's X-Request-ID if it is a short visible-ASCII id (as Heroku's router
    keeps), else a new one: it is echoed in a header and written to logs, so any other
    value is replaced rather than failing the request."""
    incoming = dict(headers).get(b"x-request-id", b"")
    return incoming.decode("ascii") if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def record_request(method: str, route: str, path: str, status: int, elapsed: float) -> None:
    """An HTTP request's duration in the histogram and its JSON log line (under the
    request id set in `request_id_var`)."""
    REQUEST_DURATION.labels(method, route, f"{status // 100}xx").observe(elapsed)
    _request_log.info(
        "request",
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
        },
    )


GRPC_REQUEST_DURATION = Histogram(
    "telemetry_grpc_request_duration_seconds",
    "OTLP/gRPC call duration by method and status code.",
    ["method", "code"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
INGEST_INFLIGHT_BYTES = Gauge(
    "telemetry_ingest_inflight_bytes",
    "Bytes reserved by ingest requests in flight (bodies plus their decoded estimate).",
    multiprocess_mode="livesum",
)
WRITER_QUEUE_ROWS = Gauge(
    "telemetry_writer_queue_rows",
    "Rows waiting for the group-commit writer.",
    multiprocess_mode="livesum",
)
WRITER_BATCH_ROWS = Histogram(
    "telemetry_writer_batch_rows",
    "Rows written per group commit.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000),
)
WRITER_BATCH_REQUESTS = Histogram(
    "telemetry_writer_batch_requests",
    "Requests answered per group commit.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
WRITER_FLUSH_DURATION = Histogram(
    "telemetry_writer_flush_duration_seconds",
    "Time from BEGIN to COMMIT of one group commit.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DATABASE_ERRORS = Counter(
    "telemetry_database_errors_total",
    "Database errors by kind (unavailable, conflict, data, other).",
    ["kind"],
)


# The table each signal's items are stored in (error events arrive with spans and logs too).
SIGNAL_OF_TABLE = {
    "spans": "spans",
    "logs": "logs",
    "metric_points": "metrics",
    "error_events": "errors",
}
INGEST_LAST_COMMIT = Gauge(
    "telemetry_ingest_last_commit_timestamp_seconds",
    "Unix time of the newest commit that stored items of the signal.",
    ["signal"],
    multiprocess_mode="max",
)
LAG_NAME = "telemetry_ingest_lag_seconds"


WORKER_RUNS = Counter(
    "telemetry_worker_runs_total",
    "Background job rounds by job and outcome (ok, skipped: another process ran it, failed).",
    ["job", "outcome"],
)
# Set by the storage-stats job in whichever process ran it last (mostrecent across processes).
TABLE_ROWS = Gauge(
    "telemetry_table_rows",
    "Estimated rows per table (PostgreSQL's reltuples, summed over partitions).",
    ["table"],
    multiprocess_mode="mostrecent",
)
TABLE_BYTES = Gauge(
    "telemetry_table_bytes",
    "Bytes on disk per table with its indexes and TOAST, summed over partitions.",
    ["table"],
    multiprocess_mode="mostrecent",
)
OLDEST_PARTITION_AGE = Gauge(
    "telemetry_oldest_partition_age_seconds",
    "Seconds since the start of the oldest day partition of each partitioned table "
    "(spans, logs, metric_points, error_events: the signals; span_rollups, slo_minutes).",
    ["table"],
    multiprocess_mode="mostrecent",
)

RULE_EVALUATIONS = Counter(
    "telemetry_alert_rule_evaluations_total",
    "Alert rule evaluations by outcome (ok; failed: the query or the stored rule failed; "
    "timeout: cancelled after alert_query_timeout).",
    ["outcome"],
)
RULE_EVALUATION_DURATION = Histogram(
    "telemetry_alert_rule_evaluation_duration_seconds",
    "Time to evaluate one alert rule (its query and the state machine).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ALERT_ROUND_DURATION = Histogram(
    "telemetry_alert_evaluation_round_duration_seconds",
    "Time for one alert evaluation round, from claiming the due rules to writing alerts.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ALERT_RULES_EVALUATED = Gauge(
    "telemetry_alert_rules_evaluated",
    "Rules evaluated in the latest alert evaluation round.",
    multiprocess_mode="mostrecent",
)
ALERTS_BY_STATE = Gauge(
    "telemetry_alerts",
    "Alert instances by state (pending, firing, resolved) after the latest evaluation round.",
    ["state"],
    multiprocess_mode="mostrecent",
)

NOTIFICATIONS = Counter(
    "telemetry_notifications_total",
    "Notification delivery attempts by channel type and outcome (sent, failed_attempt), and "
    "notifications given up (given_up).",
    ["channel_type", "outcome"],
)
NOTIFICATION_DURATION = Histogram(
    "telemetry_notification_duration_seconds",
    "Time one delivery attempt to a receiver took, by channel type.",
    ["channel_type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OUTBOX_DEPTH = Gauge(
    "telemetry_notification_outbox_depth",
    "Notifications queued and not yet delivered or given up (pending).",
    multiprocess_mode="mostrecent",
)


class _WithIngestLag:
    """A registry's families plus the ingest lag, derived at scrape time from the newest
    commit per signal (the max over processes), so it grows while nothing is stored."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        lag = GaugeMetricFamily(
            LAG_NAME,
            "Seconds since the newest commit that stored items of the signal (ingest lag).",
            labels=["signal"],
        )
        for family in self._registry.collect():
            yield family
            if family.name == INGEST_LAST_COMMIT._name:
                for sample in family.samples:
                    lag.add_metric([sample.labels["signal"]], max(0.0, now - sample.value))
        yield lag


def metrics_payload() -> tuple[bytes, str]:
    """The text exposition of this process, or of all processes in multiprocess mode."""
    registry = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return generate_latest(_WithIngestLag(registry)), CONTENT_TYPE_LATEST  # type: ignore[arg-type]


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id when there is one."""

    _standard = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in self._standard and not key.startswith("_") and key != "color_message":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # The access log is replaced by our own request log line (with the request id).
    logging.getLogger("uvicorn.access").disabled = True
