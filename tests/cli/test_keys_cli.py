"""`telemetry-collector keys create|list|revoke` against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from support import ROOT

from app.auth import KeyStore


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "keys", *args],
        cwd=ROOT,
        env={**os.environ, "TELEMETRY_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_create_list_and_revoke(database_url, engine) -> None:
    project = f"cli-{uuid.uuid4().hex[:6]}"
    created = _cli(
        database_url, "create", "--project", project, "--scope", "ingest", "--name", "ci"
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("tc_") and len(key) > 40
    assert "shown once" in created.stderr
    assert (await KeyStore(engine, ttl_s=0).lookup(key)).project_name == project

    listed = _cli(database_url, "list", "--project", project)
    assert listed.returncode == 0, listed.stderr
    assert key[:10] in listed.stdout and "ingest" in listed.stdout
    assert key not in listed.stdout  # only the first characters are ever shown

    revoked = _cli(database_url, "revoke", key[:10])
    assert revoked.returncode == 0, revoked.stderr
    assert project in revoked.stdout
    assert await KeyStore(engine, ttl_s=0).lookup(key) is None
    again = _cli(database_url, "revoke", key[:10])
    assert again.returncode == 2 and "no active key" in again.stderr

    bad_scope = _cli(database_url, "create", "--project", project, "--scope", "root")
    assert bad_scope.returncode == 2 and "invalid choice" in bad_scope.stderr
