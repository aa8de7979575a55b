"""deploy/grafana and its services in docker-compose.yml: the files agree with each other and
with the collector, and the read-only role and the dashboard's SQL work on a real database
(there is no Grafana here: its macros are expanded as Grafana expands them)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from api.jaeger_kit import agent_trace, now_us, send_otlp
from sqlalchemy.engine import make_url
from support import ROOT

from app.db.engine import asyncpg_dsn

GRAFANA = ROOT / "deploy" / "grafana"
VARIABLE = re.compile(r"\$\{(\w+)\}")


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _datasources() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load((GRAFANA / "provisioning/datasources/telemetry.yaml").read_text())
    return {source["uid"]: source for source in document["datasources"]}


def _dashboard() -> dict[str, Any]:
    return json.loads((GRAFANA / "dashboards" / "llm-calls.json").read_text())


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    return dict(volume.rsplit(":", 2)[:2] for volume in service["volumes"] if ":" in volume)


def test_compose_runs_grafana_with_the_provisioning_and_the_reader_role_first() -> None:
    services = _compose()["services"]
    grafana, reader = services["grafana"], services["grafana-reader"]
    assert grafana["depends_on"]["grafana-reader"]["condition"] == "service_completed_successfully"
    assert reader["depends_on"]["collector"]["condition"] == "service_healthy"
    for service in (grafana, reader):
        for source in _mounts(service):
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    assert _mounts(grafana)["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/telemetry.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert _mounts(grafana)["./deploy/grafana/dashboards"] == path
    # Every ${VAR} the provisioning reads is set in Grafana's environment.
    text = (GRAFANA / "provisioning/datasources/telemetry.yaml").read_text()
    assert set(VARIABLE.findall(text)) <= set(grafana["environment"])
    # The role the reader creates is the user the SQL data source logs in as.
    assert "-v role=grafana_reader" in " ".join(reader["command"])
    assert grafana["environment"]["GRAFANA_DB_USER"] == "grafana_reader"


def test_the_jaeger_data_source_points_at_the_collector_with_a_bearer_key() -> None:
    source = _datasources()["telemetry-jaeger"]
    environment = _compose()["services"]["grafana"]["environment"]
    assert source["type"] == "jaeger" and source["access"] == "proxy"
    assert source["url"] == "${GRAFANA_COLLECTOR_URL}"
    port = _compose()["services"]["collector"]["ports"][0].split(":")[-1]
    assert environment["GRAFANA_COLLECTOR_URL"] == f"http://collector:{port}"
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    assert source["secureJsonData"]["httpHeaderValue1"] == "Bearer ${GRAFANA_COLLECTOR_KEY}"


def test_dashboard_panels_use_the_provisioned_data_sources() -> None:
    sources = _datasources()
    dashboard = _dashboard()
    assert dashboard["templating"]["list"][0]["datasource"]["uid"] in sources
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "telemetry-postgres"
        assert sources["telemetry-postgres"]["type"] == panel["datasource"]["type"]
    links = json.dumps(dashboard)
    assert '"datasourceUid": "telemetry-jaeger"' in links


def grafana_sql(sql: str, project: str) -> str:
    """Grafana's PostgreSQL macros and the dashboard variable, expanded for the last hour."""
    sql = re.sub(
        r"\$__timeGroupAlias\((\w+), '(\d+)m'\)",
        r"""date_bin(interval '\2 minutes', \1, timestamptz 'epoch') AS "time\"""",
        sql,
    )
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 BETWEEN now() - interval '1 hour' AND now()", sql)
    assert "$__" not in sql, sql
    return sql.replace("'$project'", "'" + project.replace("'", "''") + "'")


@pytest.fixture
async def reader_role(database_url: str, db: asyncpg.Connection) -> AsyncIterator[str]:
    """deploy/grafana/readonly-role.sql run with psql, as the README says, for a new role."""
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    role = f"grafana_reader_{uuid.uuid4().hex[:8]}"
    command = [
        "psql",
        asyncpg_dsn(database_url),
        "-v",
        "ON_ERROR_STOP=1",
        "-v",
        f"role={role}",
        "-v",
        "password=it's a test",
        "-f",
        str(GRAFANA / "readonly-role.sql"),
    ]
    for _ in range(2):  # it can run again
        await asyncio.to_thread(
            subprocess.run, command, check=True, capture_output=True, timeout=60
        )
    try:
        yield role
    finally:
        await db.execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')


async def test_the_read_only_role_reads_telemetry_and_nothing_else(
    reader_role: str, database_url: str, client: httpx.AsyncClient, project_name: str
) -> None:
    await send_otlp(client, agent_trace(uuid.uuid4().hex, (now_us() - 600_000_000) * 1000))
    url = make_url(asyncpg_dsn(database_url)).set(username=reader_role, password="it's a test")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        panels = {panel["title"]: panel for panel in _dashboard()["panels"]}
        rows = {
            title: await connection.fetch(grafana_sql(panel["targets"][0]["rawSql"], project_name))
            for title, panel in panels.items()
        }
        cost = rows["Model cost per 5 minutes (USD)"]
        assert [row["metric"] for row in cost] == ["gpt-4o"] and cost[0]["cost_usd"] > 0
        slowest = rows["Slowest model calls (open one in the trace view)"]
        assert len(slowest) == 1 and slowest[0]["duration_ms"] == 240
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await connection.execute("DELETE FROM spans")
        assert await connection.fetchval("SHOW statement_timeout") == "30s"
        # Read-only sessions are a default the role may change; its privileges are the guard.
        await connection.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        for forbidden in (
            "SELECT * FROM api_keys",
            "SELECT * FROM channels",
            "SELECT created_at FROM projects",
            "DELETE FROM spans",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(forbidden)
    finally:
        await connection.close()


def test_docs_show_the_setup() -> None:
    guide = (ROOT / "docs" / "grafana.md").read_text()
    for needed in ("readonly-role.sql", "GRAFANA_COLLECTOR_KEY", "/api/traces", "jaeger"):
        assert needed in guide, needed
    integrations = (ROOT / "docs" / "integrations.md").read_text()
    assert "## Grafana and the Jaeger UI" in integrations
    assert Path(ROOT / "deploy/grafana/readonly-role.sql").exists()
