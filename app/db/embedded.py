"""Embedded PostgreSQL (the `pgserver` package) for running without a database server."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The handle keeps the server alive; pgserver stops it when the last handle's process exits.
_servers: dict[Path, Any] = {}
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


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
    if not _SAFE_NAME.match(database):
        raise ValueError(f"database name {database!r} must be lowercase letters, digits, _")
    # psql takes no bind parameters; the name was checked against _SAFE_NAME above.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {database};")
    return str(server.get_uri(database))
