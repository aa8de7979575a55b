"""Table definitions (SQLAlchemy Core). Alembic migrations create them; queries build on them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB, UUID

metadata = MetaData()

projects = Table(
    "projects",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    # The first characters of the key, shown in listings so a key can be recognised.
    Column("prefix", Text, nullable=False),
    # SHA-256 of the whole key: keys are 256-bit random, so a fast hash is safe here.
    Column("key_hash", LargeBinary, nullable=False, unique=True),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("name", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
)

# Spans are range-partitioned by day on start_time; app/db/partitions.py creates the days.
# (project_id, trace_id, span_id, start_time) is unique so a retried export is a no-op;
# a partition key must be part of any unique index, and a retry carries the same start.
spans = Table(
    "spans",
    metadata,
    Column("project_id", BigInteger, nullable=False),
    Column("trace_id", LargeBinary, nullable=False),
    Column("span_id", LargeBinary, nullable=False),
    Column("parent_span_id", LargeBinary),
    Column("service_name", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("start_time", DateTime(timezone=True), nullable=False),
    Column("end_time", DateTime(timezone=True), nullable=False),
    Column("duration_ns", BigInteger, nullable=False),
    Column("status_code", SmallInteger, nullable=False),
    Column("status_message", Text, nullable=False),
    Column("gen_ai_provider", Text),
    Column("gen_ai_model", Text),
    Column("gen_ai_operation", Text),
    Column("gen_ai_input_tokens", BigInteger),
    Column("gen_ai_output_tokens", BigInteger),
    Column("gen_ai_cache_read_tokens", BigInteger),
    Column("gen_ai_tool_name", Text),
    Column("cost_usd", Double),
    Column("trace_state", Text, nullable=False),
    Column("flags", BigInteger, nullable=False),
    Column("attributes", JSONB, nullable=False),
    Column("resource_attributes", JSONB, nullable=False),
    Column("scope", JSONB, nullable=False),
    Column("events", JSONB, nullable=False),
    Column("links", JSONB, nullable=False),
    Column("dropped_attributes_count", Integer, nullable=False),
    Column("dropped_events_count", Integer, nullable=False),
    Column("dropped_links_count", Integer, nullable=False),
    Column("is_root", Boolean, nullable=False),
    Index(
        "spans_identity",
        "project_id",
        "trace_id",
        "span_id",
        "start_time",
        unique=True,
    ),
    Index("spans_service_time", "project_id", "service_name", "start_time"),
    postgresql_partition_by="RANGE (start_time)",
)

# The order the writer COPYs span rows in; every column above.
SPAN_COLUMNS: tuple[str, ...] = tuple(column.name for column in spans.columns)

# Logs: partitioned by day on `time`. `search_text` is the body as text plus message-like
# attributes; a GIN index over to_tsvector('simple', search_text) serves full-text search.
logs = Table(
    "logs",
    metadata,
    Column("project_id", BigInteger, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("observed_time", DateTime(timezone=True)),
    Column("service_name", Text, nullable=False),
    Column("severity_number", SmallInteger, nullable=False),
    Column("severity_text", Text, nullable=False),
    Column("body", JSONB),
    Column("search_text", Text, nullable=False),
    Column("attributes", JSONB, nullable=False),
    Column("resource_attributes", JSONB, nullable=False),
    Column("scope", JSONB, nullable=False),
    Column("trace_id", LargeBinary),
    Column("span_id", LargeBinary),
    Column("flags", BigInteger, nullable=False),
    Column("event_name", Text, nullable=False),
    Column("dropped_attributes_count", Integer, nullable=False),
    # Tie-breaker for keyset paging (time, id); filled by its sequence default, so COPY
    # leaves it out (see LOG_COLUMNS and migration 0003).
    Column("id", BigInteger, server_default=text("nextval('logs_id_seq')")),
    # A hash of the record's content: a retried export is recognised and stored once.
    Column("log_id", LargeBinary),
    postgresql_partition_by="RANGE (time)",
)

# One row per distinct time series: project + name + type + unit + temporality + the
# resource, scope and point attribute sets, identified by a stable 64-bit hash.
metric_series = Table(
    "metric_series",
    metadata,
    Column("project_id", BigInteger, nullable=False, primary_key=True),
    Column("series_id", BigInteger, nullable=False, primary_key=True),
    Column("name", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("unit", Text, nullable=False),
    Column("temporality", SmallInteger, nullable=False),
    Column("is_monotonic", Boolean, nullable=False),
    Column("description", Text, nullable=False),
    Column("service_name", Text, nullable=False),
    Column("attributes", JSONB, nullable=False),
    Column("resource_attributes", JSONB, nullable=False),
    Column("scope", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Points of every kind, partitioned by day on `time`; unused columns stay NULL.
metric_points = Table(
    "metric_points",
    metadata,
    Column("project_id", BigInteger, nullable=False),
    Column("series_id", BigInteger, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("start_time", DateTime(timezone=True)),
    Column("value", Double),
    Column("count", BigInteger),
    Column("sum", Double),
    Column("min", Double),
    Column("max", Double),
    Column("explicit_bounds", ARRAY(Double)),
    Column("bucket_counts", ARRAY(BigInteger)),
    Column("scale", Integer),
    Column("zero_count", BigInteger),
    Column("zero_threshold", Double),
    Column("positive_offset", Integer),
    Column("positive_bucket_counts", ARRAY(BigInteger)),
    Column("negative_offset", Integer),
    Column("negative_bucket_counts", ARRAY(BigInteger)),
    Column("quantiles", JSONB),
    Column("exemplars", JSONB),
    Column("flags", BigInteger, nullable=False),
    postgresql_partition_by="RANGE (time)",
)

error_groups = Table(
    "error_groups",
    metadata,
    Column("project_id", BigInteger, nullable=False, primary_key=True),
    Column("fingerprint", Text, nullable=False, primary_key=True),
    Column("type", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("service_name", Text, nullable=False),
    Column("culprit", Text, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("regressed", Boolean, nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
)

# Each occurrence, partitioned by day on `time`. `event_id` makes re-sent span events
# idempotent (derived from trace, span and event position); others get a random id.
error_events = Table(
    "error_events",
    metadata,
    Column("project_id", BigInteger, nullable=False),
    Column("event_id", LargeBinary, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("service_name", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("stacktrace", Text, nullable=False),
    Column("culprit", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("trace_id", LargeBinary),
    Column("span_id", LargeBinary),
    Column("attributes", JSONB, nullable=False),
    postgresql_partition_by="RANGE (time)",
)

LOG_COLUMNS: tuple[str, ...] = tuple(column.name for column in logs.columns if column.name != "id")
METRIC_POINT_COLUMNS: tuple[str, ...] = tuple(column.name for column in metric_points.columns)
ERROR_EVENT_COLUMNS: tuple[str, ...] = tuple(column.name for column in error_events.columns)

# Per-minute span rollups for dashboards, partitioned by day on `minute`. Rows are
# appended at ingest in the spans' own transaction (so each span counts exactly once,
# late data included) and merged per key by the compaction worker. `category` is
# 1 = request (SERVER or root span), 2 = LLM call, 3 = tool execution. Latency is a
# log-bucket sketch (app/domain/sketch.py) kept as parallel index/count arrays.
span_rollups = Table(
    "span_rollups",
    metadata,
    Column("project_id", BigInteger, nullable=False),
    Column("minute", DateTime(timezone=True), nullable=False),
    Column("category", SmallInteger, nullable=False),
    Column("service_name", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("tool", Text, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("error_count", BigInteger, nullable=False),
    Column("duration_ms_sum", Double, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cache_read_tokens", BigInteger, nullable=False),
    Column("cost_usd", Double, nullable=False),
    Column("sketch_index", ARRAY(Integer), nullable=False),
    Column("sketch_count", ARRAY(BigInteger), nullable=False),
    Column("compacted", Boolean, nullable=False),
    postgresql_partition_by="RANGE (minute)",
)

ROLLUP_COLUMNS: tuple[str, ...] = tuple(column.name for column in span_rollups.columns)

# The merge per hour and key of every compacted `span_rollups` row (migration 0009): the
# compaction job folds a minute's rows into their hour in the transaction that marks them
# compacted, so long-window reads take whole hours from here and only uncompacted minute
# rows (and the window's partial edge hours) from `span_rollups` (app/query/span_stats.py).
# Appended per round and merged per key later; readers sum every row of a key.
span_rollups_hourly = Table(
    "span_rollups_hourly",
    metadata,
    Column("project_id", BigInteger, nullable=False),
    Column("hour", DateTime(timezone=True), nullable=False),
    *(
        Column(column.name, column.type, nullable=False)
        for column in span_rollups.columns
        if column.name not in ("project_id", "minute", "compacted")
    ),
)

# Spans per minute, service, span name and kind (migration 0008), partitioned by day on
# `minute`: appended at ingest in the spans' own transaction (app/ingest/operations.py),
# so each span counts once, late data included, and merged per key by the compaction
# job (app/workers/operations.py). The services list sums whatever rows exist.
span_operations = Table(
    "span_operations",
    metadata,
    Column("project_id", BigInteger, nullable=False),
    Column("minute", DateTime(timezone=True), nullable=False),
    Column("service_name", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("span_count", BigInteger, nullable=False),
    Column("error_count", BigInteger, nullable=False),
    Column("compacted", Boolean, nullable=False),
    postgresql_partition_by="RANGE (minute)",
)

OPERATION_COLUMNS: tuple[str, ...] = tuple(column.name for column in span_operations.columns)

# Error events per minute and service (migration 0010), partitioned by day on `minute`:
# appended at ingest in the events' own transaction with exactly the events inserted
# (app/ingest/error_groups.py), so a re-sent event counts once, as in `error_events`;
# merged per key by the compaction job (app/workers/error_minutes.py). The overview
# counts a window's whole minutes here and its partial edge minutes in `error_events`.
error_minutes = Table(
    "error_minutes",
    metadata,
    Column("project_id", BigInteger, nullable=False),
    Column("minute", DateTime(timezone=True), nullable=False),
    Column("service_name", Text, nullable=False),
    Column("event_count", BigInteger, nullable=False),
    Column("compacted", Boolean, nullable=False),
    postgresql_partition_by="RANGE (minute)",
)

ERROR_MINUTE_COLUMNS: tuple[str, ...] = tuple(column.name for column in error_minutes.columns)

# Alerting (migration 0006). Rule and channel bodies are validated documents (`spec`,
# app/domain/alert_rules.py and app/domain/channels.py); the columns are what is queried.
channels = Table(
    "channels",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("spec", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("signal", Text, nullable=False),
    Column("spec", JSONB, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("builtin", Text),
    Column("slo_id", BigInteger, ForeignKey("slos.id", ondelete="CASCADE")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_evaluated_at", DateTime(timezone=True)),
    Column("last_duration_ms", Double),
    Column("last_error", Text),
)

# One row per alert instance (rule + label set) and lifecycle: a resolved alert that fires
# again is a new row. At most one live (pending or firing) row per rule and fingerprint.
alerts = Table(
    "alerts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("project_id", BigInteger, nullable=False),
    Column("rule_id", BigInteger, ForeignKey("alert_rules.id", ondelete="SET NULL")),
    Column("rule_name", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("labels", JSONB, nullable=False),
    Column("annotations", JSONB, nullable=False),
    Column("state", Text, nullable=False),
    Column("value", Double),
    Column("active_at", DateTime(timezone=True), nullable=False),
    Column("fired_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("keep_firing_since", DateTime(timezone=True)),
    Column("last_evaluated_at", DateTime(timezone=True), nullable=False),
)

silences = Table(
    "silences",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text),
    Column("matchers", JSONB, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("created_by", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

notification_groups = Table(
    "notification_groups",
    metadata,
    Column(
        "channel_id",
        BigInteger,
        ForeignKey("channels.id", ondelete="CASCADE"),
        primary_key=True,
        nullable=False,
    ),
    Column("group_key", Text, primary_key=True, nullable=False),
    Column("project_id", BigInteger, nullable=False),
    Column("group_labels", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_flush_at", DateTime(timezone=True), nullable=False),
    Column("last_notified_at", DateTime(timezone=True)),
    Column("notified_firing", ARRAY(BigInteger), nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("project_id", BigInteger, nullable=False),
    Column("channel_id", BigInteger, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    Column("group_key", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("payload", JSON, nullable=False),  # json, not jsonb: the body as sent
    Column("resolved_alert_ids", ARRAY(BigInteger), nullable=False, server_default="{}"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
)

# SLOs (migration 0007). `spec` is the validated SLO body (app/domain/slos.py).
slos = Table(
    "slos",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("project_id", BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("service", Text, nullable=False),
    Column("spec", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("counted_from", DateTime(timezone=True)),
    Column("counted_until", DateTime(timezone=True)),
    Column("last_evaluated_at", DateTime(timezone=True)),
    Column("last_duration_ms", Double),
    Column("last_error", Text),
)

slo_minutes = Table(
    "slo_minutes",
    metadata,
    Column("slo_id", BigInteger, primary_key=True, nullable=False),
    Column("minute", DateTime(timezone=True), primary_key=True, nullable=False),
    Column("good", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    postgresql_partition_by="RANGE (minute)",
)

# slo_minutes summed per hour (written in the same transaction), for reads of long windows.
slo_hours = Table(
    "slo_hours",
    metadata,
    Column(
        "slo_id",
        BigInteger,
        ForeignKey("slos.id", ondelete="CASCADE"),
        primary_key=True,
        nullable=False,
    ),
    Column("hour", DateTime(timezone=True), primary_key=True, nullable=False),
    Column("good", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
)
