"""Embedded PostgreSQL (the optional `pgserver` package) for running without a database server."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

# The handle keeps the server alive; pgserver stops it when the last handle's process exits.
_servers: dict[Path, Any] = {}
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# pgserver logs each initdb/pg_ctl command with its whole output at info level: that goes
# here, beside the cluster, instead of into the collector's JSON log.
LOG_FILE = "embedded-postgres.log"
NOT_INSTALLED = (
    "TELEMETRY_DATABASE_URL is not set and the embedded PostgreSQL is not installed: set "
    "TELEMETRY_DATABASE_URL=postgresql://user:password@host:5432/database, or install the "
    "`embedded` extra (pip install 'telemetry-collector[embedded]')"
)


class EmbeddedPostgresError(RuntimeError):
    """No database URL, and no embedded PostgreSQL that could be started instead."""


def _pgserver() -> ModuleType:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI, cron, sudo);
        # pgserver then keeps its lock file under /tmp/runtime-<uid>, which is fine.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        try:
            import pgserver
        except ImportError:
            raise EmbeddedPostgresError(NOT_INSTALLED) from None
    return pgserver


def _log_to_file(path: Path) -> None:
    logger = logging.getLogger("pgserver")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if not any(getattr(handler, "baseFilename", None) == str(path) for handler in logger.handlers):
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)


def start_embedded(data_dir: Path, database: str = "telemetry") -> str:
    """Start (or join) the embedded server under `data_dir/postgres`; return its URL."""
    if not _SAFE_NAME.match(database):
        raise ValueError(f"database name {database!r} must be lowercase letters, digits, _")
    pgserver = _pgserver()
    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = _servers.get(pgdata)
    if server is None:
        log_path = pgdata.parent / LOG_FILE
        _log_to_file(log_path)
        log.info("starting embedded PostgreSQL", extra={"pgdata": str(pgdata), "log": log_path})
        try:
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
        except Exception as error:
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL in {pgdata} did not start ({error!r}); "
                f"see {log_path} and {pgdata / 'log'}"
            ) from error
        _servers[pgdata] = server
    # psql takes no bind parameters; the name was checked against _SAFE_NAME above.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {database};")
    return str(server.get_uri(database))


def stop_embedded(data_dir: Path) -> None:
    """Let go of this process's handle; the server stops if no other process uses it."""
    server = _servers.pop((data_dir / "postgres").resolve(), None)
    if server is not None:
        server.cleanup()
