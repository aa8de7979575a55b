"""The collector's one settings class: every knob, read from `TELEMETRY_*` variables or `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.domain.durations import parse_duration_seconds
from app.domain.redaction import DEFAULT_REDACT_KEYS

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Configuration; names match the table in API.md (prefix `TELEMETRY_`)."""

    model_config = SettingsConfigDict(
        env_prefix="TELEMETRY_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(
        None,
        description="PostgreSQL URL; unset starts an embedded PostgreSQL under data_dir (the "
        "`embedded` extra, which `make` installs and the container image leaves out).",
    )
    database_read_url: str | None = Field(
        None, description="A replica for queries; unset uses database_url."
    )
    data_dir: Path = Field(
        Path("./.data"), description="Embedded PostgreSQL and other local state."
    )
    host: str = Field("0.0.0.0", description="Listen address for `serve`.")
    port: int = Field(4318, description="Listen port (the OTLP/HTTP port).")
    grpc_enabled: bool = Field(
        True,
        description="Serve OTLP/gRPC (traces, logs, metrics) on grpc_port, on the same address "
        "as HTTP, in every worker process.",
    )
    grpc_port: int = Field(4317, description="Listen port of OTLP/gRPC.")
    auth_enabled: bool = Field(True, description="Require API keys on ingest and query.")
    ui_enabled: bool = Field(
        True, description="Serve the web UI at / and /ui/ (sign-in with an API key)."
    )
    ui_secret: str = Field(
        "",
        description="Key that signs UI session cookies; unset: a random one per `serve` "
        "(shared by its workers), so sign-ins last until a restart and are not shared "
        "between replicas.",
    )
    ui_session_ttl: str = Field("12h", description="How long a UI sign-in lasts.")
    key_cache_ttl: str = Field(
        "10s",
        description="How long a process trusts an API key lookup (hits and misses): a revoked "
        "key stops working within this long everywhere.",
    )
    log_level: str = Field("info", description="Level of the collector's own JSON logs.")

    max_body_bytes: int = Field(16 * MIB, description="Largest request body as sent.")
    max_decompressed_bytes: int = Field(
        64 * MIB, description="Largest request body after gzip/deflate decompression."
    )
    max_attributes: int = Field(
        128,
        description="Attributes kept per span/log/resource; the rest are dropped and counted "
        "in dropped_attributes_count, as the OpenTelemetry SDKs do.",
    )
    max_attribute_value_chars: int = Field(
        16384, description="Longer string attribute values are truncated to this length."
    )

    max_inflight_bytes: int = Field(
        32 * MIB,
        description="Memory budget per process for ingest requests in flight (bodies as read "
        "plus an estimate of their decoded records and rows, held until answered); a request "
        "that does not fit is answered 503 with Retry-After before its body is read.",
    )
    max_connections: int = Field(
        4096,
        description="Open HTTP connections per process; past this, new connections may only "
        "call /healthz, /readyz and /metrics (others are answered 503 and closed), and past "
        "it plus 64 they are closed at once.",
    )
    header_read_timeout_s: float = Field(
        10.0,
        description="A request's line and headers must arrive within this long of its first "
        "byte (or of the connection's opening), else the connection is closed.",
    )
    body_read_timeout_s: float = Field(
        60.0,
        description="A request's body must arrive within this long of its headers, else it is "
        "answered 408 and the connection is closed.",
    )
    keep_alive_timeout_s: float = Field(
        5.0, description="An idle keep-alive connection is closed after this long."
    )

    db_pool_size: int = Field(10, description="Connections per process for queries and jobs.")
    writer_pool_size: int = Field(
        4, description="Connections per process for the ingest writer (its own pool)."
    )
    db_connect_timeout_s: float = Field(
        5.0, description="Give up connecting after this long (ingest answers 503)."
    )
    db_statement_timeout_s: float = Field(
        10.0,
        description="PostgreSQL cancels a statement running longer than this (reads then "
        "answer 503), and the collector gives up on a database silent for 1 s more (a frozen "
        "server or a partition).",
    )
    writer_max_batch_rows: int = Field(
        20000, description="Most rows one group commit writes in one transaction."
    )
    writer_max_queued_rows: int = Field(
        100000,
        description="Rows waiting for the writer per process; past this, ingest answers 503 "
        "with Retry-After instead of buffering without bound.",
    )
    writer_commit_timeout_s: float = Field(
        30.0, description="A request waits this long for its commit before answering 503."
    )
    retry_after_s: int = Field(5, description="Retry-After sent with 429/503 answers.")

    retention_traces: str = Field("7d", description="How long spans are kept.")
    retention_logs: str = Field("30d", description="How long logs are kept.")
    retention_metrics: str = Field("15d", description="How long metric points are kept.")
    retention_errors: str = Field("30d", description="How long error events are kept.")
    retention_interval: str = Field("1h", description="How often old partitions are dropped.")
    rollup_interval: str = Field(
        "5s",
        description="How often per-minute dashboard rollups are compacted and folded into "
        "hours (a round with nothing settled to merge costs one index probe).",
    )
    workers_enabled: bool = Field(
        True,
        description="Run background jobs (rollups, retention, alert evaluation, notification "
        "delivery, SLOs) in this process.",
    )
    max_future_skew: str = Field(
        "1d", description="Data stamped further ahead than this is rejected."
    )

    external_url: str = Field(
        "http://localhost:4318",
        description="This collector's address as people reach it; links in notifications "
        "(externalURL, generatorURL) start with it.",
    )
    alert_eval_interval: str = Field("30s", description="Alert rule evaluation period.")
    alert_query_timeout: str = Field(
        "10s", description="One rule's query is cancelled after this long (recorded on the rule)."
    )
    alert_resolved_retention: str = Field(
        "24h", description="Resolved alerts stay listed in /api/v1/alerts this long."
    )
    alert_group_wait: str = Field(
        "30s",
        description="Notification group wait: how long a new group waits for more alerts "
        "before its first notification (a channel may override it).",
    )
    alert_group_interval: str = Field(
        "5m",
        description="Notification group interval: how long a group waits before notifying "
        "about changes (a channel may override it).",
    )
    alert_repeat_interval: str = Field(
        "4h",
        description="Notification repeat interval: a still-firing group is notified again "
        "after this long (a channel may override it).",
    )
    alert_dispatch_interval: str = Field(
        "1s", description="How often notification groups are checked for a due notification."
    )
    alertmanager_resend_delay: str = Field(
        "1m",
        description="Firing alerts are re-sent to `alertmanager` channels this often, as "
        "Prometheus does, so Alertmanager does not resolve them on its own.",
    )
    notification_timeout: str = Field(
        "10s", description="One delivery attempt to a receiver is abandoned after this long."
    )
    notification_give_up_after: str = Field(
        "1h",
        description="A notification still undelivered this long after it was queued is given "
        "up and recorded as failed.",
    )
    slo_eval_interval: str = Field(
        "30s", description="How often SLO minute counts, budgets and burn-rate alerts update."
    )
    slo_recount_window: str = Field(
        "15m",
        description="Each SLO round recounts the minutes this far back, so late spans count.",
    )
    storage_stats_interval: str = Field(
        "1m",
        description="How often table rows and bytes and the oldest partitions' ages are "
        "measured for /metrics.",
    )

    prices_file: Path | None = Field(
        None, description="Model price table (YAML or JSON); unset uses the built-in table."
    )
    redact_keys: Annotated[list[str], NoDecode] = Field(
        list(DEFAULT_REDACT_KEYS),
        description="Attribute keys stored as [REDACTED] (case-insensitive, also as suffixes).",
    )
    max_series_per_metric: int = Field(
        10000, description="Distinct attribute sets per metric name and project."
    )

    @field_validator(
        "key_cache_ttl",
        "retention_traces",
        "retention_logs",
        "retention_metrics",
        "retention_errors",
        "retention_interval",
        "rollup_interval",
        "max_future_skew",
        "alert_eval_interval",
        "alert_query_timeout",
        "alert_resolved_retention",
        "alert_group_wait",
        "alert_group_interval",
        "alert_repeat_interval",
        "alert_dispatch_interval",
        "alertmanager_resend_delay",
        "notification_timeout",
        "notification_give_up_after",
        "slo_eval_interval",
        "slo_recount_window",
        "storage_stats_interval",
    )
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration_seconds(value)
        return value

    @field_validator("redact_keys", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # Operators write `TELEMETRY_REDACT_KEYS=password,token`; JSON lists work too.
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def seconds(self, name: str) -> float:
        """A duration setting in seconds, e.g. `settings.seconds("retention_traces")`."""
        return parse_duration_seconds(getattr(self, name))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
