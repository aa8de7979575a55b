"""Database engines: URL handling and the async engine (created in lifespan, never at import)."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_only

from app.config import Settings


def async_url(url: str) -> str:
    """Any PostgreSQL URL → the SQLAlchemy asyncpg form (`postgresql+asyncpg://…`)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgres"):
        raise ValueError(f"database URL must be a PostgreSQL URL, got {parsed.drivername!r}")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """Any PostgreSQL URL → a plain DSN asyncpg.connect() accepts."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(
    settings: Settings, url: str, *, pool_size: int | None = None, role: str | None = None
) -> AsyncEngine:
    """The async engine; `role` names its connections in pg_stat_activity
    (`telemetry-collector/writer`), so an operator can tell the pools apart."""
    application_name = f"telemetry-collector/{role}" if role else "telemetry-collector"
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=2,
        # A pooled connection is checked before use, in one round trip (`_ping`).
        pool_pre_ping=False,
        # jsonb columns are read on every trace and log query; orjson parses them faster.
        json_deserializer=orjson.loads,
        json_serializer=lambda value: orjson.dumps(value).decode(),
        # A dead connection must fail fast: ingest answers 503 and the client retries.
        pool_timeout=settings.db_connect_timeout_s,
        connect_args={
            "timeout": settings.db_connect_timeout_s,
            # The server cancels a statement after statement_timeout; a frozen server
            # cannot, so the client also stops waiting a second later (the pool then
            # replaces the connection), and the request answers 503 instead of hanging.
            "command_timeout": settings.db_statement_timeout_s + 1,
            "server_settings": {
                "statement_timeout": str(int(settings.db_statement_timeout_s * 1000)),
                "application_name": application_name,
                # The driver prepares statements, and PostgreSQL switches a prepared
                # statement to a generic plan after five runs. Search plans depend on the
                # values (a rare word walks the GIN index, a common one the time index);
                # generic plans measured up to 500x slower, so plan for the values.
                "plan_cache_mode": "force_custom_plan",
            },
        },
    )
    event.listen(engine.sync_engine, "connect", _fresh)
    event.listen(engine.sync_engine, "checkout", _ping)
    return engine


_FRESH = "telemetry_fresh"


def _fresh(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_FRESH] = True


def _ping(_dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    """Before a pooled connection is handed out, one round trip (`;`) says it still works;
    a dead one (the server restarted, a proxy cut it) is replaced: DisconnectionError makes
    the pool connect anew. A connection just opened is not pinged.

    SQLAlchemy's own pre-ping wraps the same query in BEGIN and ROLLBACK, for PgBouncer's
    transaction mode (which this collector does not support, docs/operations.md): three
    round trips, measured at 0.34 ms of wall time and 0.24 ms of CPU more per checkout than
    this one (docs/benchmarks.md), on every read request and every background job round.
    """
    if record.info.pop(_FRESH, False):
        return
    try:
        await_only(record.driver_connection.fetchrow(";"))
    except TimeoutError:
        raise  # a silent server: reconnecting would wait again (answered 503 as before)
    except Exception as error:
        raise DisconnectionError(f"a pooled connection failed its ping: {error!r}") from error


async def database_responds(url: str, timeout_s: float) -> bool:
    """Whether the server answers at all within `timeout_s`, on a fresh connection.

    An error sent by the server (too many connections, say) counts as an answer: it is
    the silent server, stopped or cut off, that this tells apart from a slow one.
    """
    try:
        connection = await asyncpg.connect(asyncpg_dsn(url), timeout=timeout_s)
    except asyncpg.PostgresError:
        return True
    except (OSError, TimeoutError, asyncpg.InterfaceError):
        return False
    try:
        await connection.fetchval("SELECT 1", timeout=timeout_s)
        return True
    except asyncpg.PostgresError:
        return True
    except (OSError, TimeoutError, asyncpg.InterfaceError):
        return False
    finally:
        connection.terminate()
