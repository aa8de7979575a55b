"""Embedded PostgreSQL (the `pgserver` package) for running without a database server."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The handle keeps the server alive; pgserver stops it when the last handle's process exits.
_servers: dict[Path, Any] = {}


def start_embedded(data_dir: Path, database: str = "telemetry") -> str:
    """Start (or join) the embedded server under `data_dir/postgres`; return its URL."""
    import pgserver  # imported here: only local runs need it loaded

    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = _servers.get(pgdata)
    if server is None:
        log.info("starting embedded PostgreSQL", extra={"pgdata": str(pgdata)})
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        _servers[pgdata] = server
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {database};")
    return str(server.get_uri(database))
