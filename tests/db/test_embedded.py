"""The embedded PostgreSQL: what `make run` and `make test` use on a machine without a server.

CI points TEST_DATABASE_URL at the machine's PostgreSQL, so the rest of the suite never takes
the embedded path there; this test takes it once: initdb and start through the CLI (quietly:
the server's own output goes to its log file), then the test suite's own helper on the same
directory, with a database created, migrated and dropped as `make test` does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import pytest
from support import ROOT, create_test_database, drop_test_database, embedded_server

from app.cli import main
from app.config import get_settings
from app.db.embedded import LOG_FILE, NOT_INSTALLED
from app.db.engine import asyncpg_dsn
from app.db.migrate import head_revision


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`telemetry-collector ARGS` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _environment(data_dir: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("TELEMETRY_") and name != "XDG_RUNTIME_DIR"
    }
    return {**env, "TELEMETRY_DATA_DIR": str(data_dir), "TELEMETRY_LOG_LEVEL": "info"}


async def _schema_revision(url: str) -> str:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await connection.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await connection.close()


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="this run already uses an embedded server for every test",
)
def test_embedded_server_starts_quietly_and_serves_the_test_suite() -> None:
    root = Path(tempfile.mkdtemp(prefix="telemetry-test-embedded-"))
    try:
        migrated = _cli("migrate", env=_environment(root))
        assert migrated.returncode == 0, migrated.stderr
        assert migrated.stdout.strip() == "database is at the latest schema"
        # Quiet: no platformdirs warning, no initdb/pg_ctl transcript in the collector's log.
        assert "XDG_RUNTIME_DIR" not in migrated.stderr
        assert "initdb" not in migrated.stderr and "pg_ctl" not in migrated.stderr
        transcript = (root / LOG_FILE).read_text()
        assert "initdb" in transcript and "pg_ctl" in transcript

        # The process exited, so the server stopped; the suite's helper starts it again.
        with embedded_server(root) as server:
            url = create_test_database(server)
            assert asyncio.run(_schema_revision(url)) == head_revision()
            drop_test_database(url)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_without_database_url_or_embedded_server_the_cli_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pgserver", None)  # as in the image, which leaves it out
    monkeypatch.delenv("TELEMETRY_DATABASE_URL", raising=False)
    monkeypatch.setenv("TELEMETRY_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 2
    finally:
        get_settings.cache_clear()
    assert capsys.readouterr().err.strip() == f"error: {NOT_INSTALLED}"
    assert not (tmp_path / "postgres").exists()
