"""`create_app()`: routers, middleware and the lifespan that owns the pool and the writer."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import (
    alert_rules_api,
    alerts_api,
    channels_api,
    dashboard,
    errors_api,
    health,
    jaeger_api,
    logs_api,
    metrics_api,
    native,
    otlp_logs,
    otlp_metrics,
    otlp_traces,
    services_api,
    silences_api,
    slos_api,
    traces,
)
from app.api.docs import install_docs
from app.api.errors import install_error_handlers
from app.api.failsafe import Failsafe
from app.auth import DEFAULT_PROJECT, KeyStore, ensure_project
from app.config import Settings, get_settings
from app.db.embedded import start_embedded
from app.db.engine import create_engine, database_responds
from app.db.migrate import head_revision
from app.db.partitions import PARTITIONED_TABLES, PartitionManager
from app.grpc.server import start_grpc, stop_grpc
from app.ingest.admission import Admission
from app.ingest.enrich import Enricher
from app.ingest.error_groups import ERROR_EVENTS_HOOK
from app.ingest.offload import Offload
from app.ingest.operations import SPANS_HOOK
from app.ingest.series import SeriesRegistry
from app.ingest.writer import GroupCommitWriter
from app.services import Services
from app.telemetry import configure_logging, record_request, request_id_from, request_id_var
from app.ui import install_ui
from app.workers.alert_eval import evaluate_round
from app.workers.delivery import Deliverer
from app.workers.dispatch import dispatch_round
from app.workers.error_minutes import compact_error_minutes
from app.workers.operations import compact_operations
from app.workers.partition_stats import maintain_partitions
from app.workers.retention import drop_expired
from app.workers.rollups import compact_rollups
from app.workers.runner import Job, Workers
from app.workers.slo_counts import count_slos
from app.workers.storage_stats import record_storage_stats

log = logging.getLogger("app")
# At shutdown, after in-flight requests were answered (or cut off), background jobs get
# this long to finish their round and the writer as long to commit what is still queued
# (the rest is answered 503); both fit in serve's kill deadline.
WRITER_DRAIN_S = 2.0


def database_url(settings: Settings) -> str:
    return settings.database_url or start_embedded(settings.data_dir)


def background_jobs(settings: Settings, partitions: PartitionManager) -> list[Job]:
    async def retention(engine: AsyncEngine) -> None:
        await drop_expired(engine, settings, partitions)

    async def rollups(engine: AsyncEngine) -> None:
        await compact_rollups(engine)
        await compact_operations(engine)
        await compact_error_minutes(engine)

    async def partition_maintenance(engine: AsyncEngine) -> None:
        await maintain_partitions(engine)

    async def dispatch(engine: AsyncEngine) -> None:
        await dispatch_round(engine, settings)

    deliverer = Deliverer(settings)

    async def deliver(engine: AsyncEngine) -> None:
        await deliverer.round(engine)

    async def alert_evaluation(engine: AsyncEngine) -> None:
        await evaluate_round(engine, settings)

    async def slo_counts(engine: AsyncEngine) -> None:
        await count_slos(engine, settings, partitions)

    async def storage_stats(engine: AsyncEngine) -> None:
        await record_storage_stats(engine)

    return [
        Job("rollup-compaction", settings.seconds("rollup_interval"), rollups),
        # As often as compaction: both keep fresh data cheap to read.
        Job("partition-maintenance", settings.seconds("rollup_interval"), partition_maintenance),
        Job("retention", settings.seconds("retention_interval"), retention),
        Job("notification-dispatch", settings.seconds("alert_dispatch_interval"), dispatch),
        Job(
            "notification-delivery",
            settings.seconds("alert_dispatch_interval"),
            deliver,
            close=deliverer.close,
        ),
        Job("alert-evaluation", settings.seconds("alert_eval_interval"), alert_evaluation),
        Job("slo-evaluation", settings.seconds("slo_eval_interval"), slo_counts),
        Job("storage-stats", settings.seconds("storage_stats_interval"), storage_stats),
    ]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    url = database_url(settings)
    engine = create_engine(settings, url)
    read_engine = (
        create_engine(settings, settings.database_read_url, role="read")
        if settings.database_read_url
        else engine
    )
    # The writer has its own small pool: its connections carry a different jsonb codec,
    # and ingest bursts cannot starve queries of connections (or the reverse).
    writer_engine = create_engine(settings, url, pool_size=settings.writer_pool_size, role="writer")
    partitions = PartitionManager(engine)
    writer = GroupCommitWriter(
        writer_engine,
        partitions,
        max_batch_rows=settings.writer_max_batch_rows,
        max_queued_rows=settings.writer_max_queued_rows,
        commit_timeout_s=settings.writer_commit_timeout_s,
        hooks={"error_events": ERROR_EVENTS_HOOK, "spans": SPANS_HOOK},
        probe=lambda: database_responds(url, settings.db_connect_timeout_s),
    )
    default_project_id = 0
    try:
        default_project_id = await ensure_project(engine, DEFAULT_PROJECT)
        for table in PARTITIONED_TABLES:
            await partitions.ensure_ahead(table)
    except Exception as error:
        # Start anyway: /readyz reports the database, and ingest answers 503 until it is back.
        log.warning("database not ready at startup", extra={"error": repr(error)})
    await writer.start()
    workers = Workers(engine, background_jobs(settings, partitions))
    if settings.workers_enabled:
        workers.start()
    app.state.services = Services(
        settings=settings,
        engine=engine,
        read_engine=read_engine,
        partitions=partitions,
        writer=writer,
        keys=KeyStore(engine, settings.seconds("key_cache_ttl")),
        enricher=Enricher.from_settings(settings),
        series=SeriesRegistry(engine, settings.max_series_per_metric),
        default_project_id=default_project_id,
        head_revision=head_revision(),
        admission=Admission(settings.max_inflight_bytes),
        offload=Offload(),
    )
    grpc_server = None
    try:
        if settings.grpc_enabled:
            # Same address as HTTP (serve puts --host in TELEMETRY_HOST); a port that cannot
            # be bound fails startup, as an HTTP port in use does.
            grpc_server = await start_grpc(app.state.services, settings.host)
        log.info("collector started", extra={"auth_enabled": settings.auth_enabled})
        yield
    finally:
        if grpc_server is not None:
            await stop_grpc(grpc_server)
        await workers.stop(timeout_s=WRITER_DRAIN_S)
        await writer.stop(timeout_s=WRITER_DRAIN_S)
        app.state.services.offload.close()
        await writer_engine.dispose()
        await engine.dispose()
        if read_engine is not engine:
            await read_engine.dispose()


class RequestContext:
    """Request id (honours X-Request-ID), duration histogram and one JSON log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            record_request(scope["method"], route, scope["path"], status, elapsed)
            request_id_var.reset(token)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="Telemetry collector for AI assistants",
        version="0.1.0",
        lifespan=lifespan,
        description="OTLP and native ingest of spans, logs, metrics and errors; trace, log "
        "and metric queries, error groups and dashboards. Authorize with an API key "
        "(`telemetry-collector keys create`). See README.md.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    install_docs(app)
    install_error_handlers(app)
    routers = [
        otlp_traces.router,
        otlp_logs.router,
        otlp_metrics.router,
        traces.router,
        health.router,
        errors_api.router,
        dashboard.router,
        native.router,
        logs_api.router,
        services_api.router,
        metrics_api.router,
        channels_api.router,
        alert_rules_api.router,
        alerts_api.router,
        silences_api.router,
        slos_api.router,
        jaeger_api.router,
    ]
    for router in routers:
        app.include_router(router)
    if settings.ui_enabled:
        install_ui(app, settings)
    app.add_middleware(Failsafe)  # inside RequestContext, which logs what it answers
    app.add_middleware(RequestContext)
    return app


def app_factory() -> Any:
    """Entry point for `uvicorn --factory app.main:app_factory` (used by `serve`)."""
    return create_app()
