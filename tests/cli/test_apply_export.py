"""`telemetry-collector apply` and `export`: alerting as code, through the real command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from support import ROOT

from app.domain.config_file import load

FILE = """
channels:
  - name: oncall
    type: webhook
    url: ${ONCALL_URL}
    headers: {Authorization: "Bearer ${ONCALL_TOKEN}"}
    group_by: [alertname, service]
  - name: team-slack
    type: slack
    url: https://hooks.slack.example/services/T0/B0/secret
rules:
  - name: LLM error rate
    signal: spans
    query:
      aggregation: error_rate
      filters: {category: llm}
      window: 5m
      group_by: [model]
    condition: {op: ">", threshold: 0.05}
    for: 5m
    severity: critical
    annotations:
      summary: "{{ $labels.model }} fails {{ $value | humanizePercentage }} of calls"
      runbook_url: https://runbooks.example/llm-errors
    channels: [oncall]
  - name: Assistant silent
    signal: spans
    query: {aggregation: absent, filters: {service: code-assistant, category: request}, window: 10m}
    channels: [oncall, team-slack]
  - name: NewErrorGroup
    builtin: true
    enabled: false
silences:
  - name: friday-deploy
    matchers: [{name: service, value: code-assistant}]
    ends_at: ${SILENCE_ENDS}
    comment: deploy window
slos:
  - name: chat availability
    service: code-assistant
    sli: {type: availability}
    objective: 99.5
    window: 28d
    alerting: {channels: [oncall]}
"""

SILENCE_ENDS = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
ENV = {
    "ONCALL_URL": "https://pager.example/hook",
    "ONCALL_TOKEN": "s3cr3t",
    "SILENCE_ENDS": SILENCE_ENDS.isoformat(),
}


CHANGE_LINE = re.compile(r"^(created|updated|deleted) ", re.MULTILINE)


def _cli(
    database_url: str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
):
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env={**os.environ, "TELEMETRY_DATABASE_URL": database_url, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _write(tmp_path: Path, text: str, name: str = "alerting.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


async def _state(db: asyncpg.Connection, project: str) -> dict[str, Any]:
    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project)
    return {
        "channels": {
            row["name"]: row["spec"]
            for row in await db.fetch(
                "SELECT name, spec::text AS spec FROM channels WHERE project_id = $1", project_id
            )
        },
        "rules": {
            row["name"]: (row["enabled"], row["spec"])
            for row in await db.fetch(
                "SELECT name, enabled, spec::text AS spec FROM alert_rules "
                "WHERE project_id = $1 AND slo_id IS NULL",
                project_id,
            )
        },
        "silences": {
            row["name"]: (row["ends_at"], row["matchers"])
            for row in await db.fetch(
                "SELECT name, ends_at, matchers::text AS matchers FROM silences "
                "WHERE project_id = $1",
                project_id,
            )
        },
        "slos": {
            row["name"]: row["spec"]
            for row in await db.fetch(
                "SELECT name, spec::text AS spec FROM slos WHERE project_id = $1", project_id
            )
        },
        "updated": await db.fetchval(
            "SELECT max(updated_at) FROM (SELECT updated_at FROM channels WHERE project_id = $1 "
            "UNION ALL SELECT updated_at FROM alert_rules WHERE project_id = $1 "
            "UNION ALL SELECT updated_at FROM slos WHERE project_id = $1) AS u",
            project_id,
        ),
    }


async def test_apply_creates_then_changes_nothing_and_export_round_trips(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    project = f"apply-{uuid.uuid4().hex[:6]}"
    path = _write(tmp_path, FILE)
    first = _cli(database_url, "apply", "-f", path, "--project", project, env=ENV)
    assert first.returncode == 0, first.stderr
    assert "created channel 'oncall'" in first.stdout
    assert "created rule 'LLM error rate'" in first.stdout
    assert "updated rule 'NewErrorGroup'" in first.stdout
    assert "created silence 'friday-deploy'" in first.stdout
    assert "created SLO 'chat availability'" in first.stdout
    state = await _state(db, project)
    assert '"Authorization": "Bearer s3cr3t"' in state["channels"]["oncall"]
    assert state["rules"]["NewErrorGroup"][0] is False, "the built-in rule was disabled"
    assert set(state["rules"]) >= {"LLM error rate", "Assistant silent", "ErrorSpike5m"}
    assert state["silences"]["friday-deploy"][0] == SILENCE_ENDS

    again = _cli(database_url, "apply", "-f", path, "--project", project, env=ENV)
    assert again.returncode == 0, again.stderr
    assert not CHANGE_LINE.search(again.stdout), again.stdout
    assert "0 created, 0 updated, 0 deleted" in again.stdout
    assert await _state(db, project) == state, "applying twice changes nothing"

    exported = _cli(database_url, "export", "--project", project)
    assert exported.returncode == 0, exported.stderr
    assert "s3cr3t" not in exported.stdout and "/secret" not in exported.stdout
    document = yaml.safe_load(exported.stdout)
    rules = {rule["name"]: rule for rule in document["rules"]}
    assert rules["LLM error rate"]["channels"] == ["oncall"]
    assert rules["NewErrorGroup"] == {
        "name": "NewErrorGroup",
        "builtin": True,
        "enabled": False,
        "channels": [],
        "labels": {},
        "annotations": rules["NewErrorGroup"]["annotations"],
    }
    assert document["slos"][0]["alerting"]["channels"] == ["oncall"]
    # The masked export applies back without a change: masked secrets keep the stored ones.
    round_trip = _cli(database_url, "apply", "-f", "-", "--project", project, stdin=exported.stdout)
    assert round_trip.returncode == 0, round_trip.stderr
    assert "0 created, 0 updated, 0 deleted" in round_trip.stdout, round_trip.stdout
    assert await _state(db, project) == state

    shown = _cli(database_url, "export", "--project", project, "--show-secrets")
    assert "s3cr3t" in shown.stdout


async def test_changes_dry_run_and_prune(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    project = f"apply-{uuid.uuid4().hex[:6]}"
    assert (
        _cli(
            database_url, "apply", "-f", _write(tmp_path, FILE), "--project", project, env=ENV
        ).returncode
        == 0
    )
    before = await _state(db, project)

    smaller = FILE.replace("threshold: 0.05", "threshold: 0.1")
    smaller = (
        smaller[: smaller.index("  - name: Assistant silent")]
        + smaller[smaller.index("  - name: NewErrorGroup") :]
    )
    path = _write(tmp_path, smaller, "smaller.yaml")
    dry = _cli(
        database_url, "apply", "-f", path, "--project", project, "--prune", "--dry-run", env=ENV
    )
    assert dry.returncode == 0, dry.stderr
    assert "would be updated rule 'LLM error rate'" in dry.stdout
    assert "would be deleted rule 'Assistant silent'" in dry.stdout
    assert await _state(db, project) == before, "a dry run changes nothing"

    kept = _cli(database_url, "apply", "-f", path, "--project", project, env=ENV)
    assert kept.returncode == 0 and "\ndeleted" not in kept.stdout, "without --prune nothing goes"
    assert "Assistant silent" in (await _state(db, project))["rules"]

    pruned = _cli(database_url, "apply", "-f", path, "--project", project, "--prune", env=ENV)
    assert pruned.returncode == 0, pruned.stderr
    after = await _state(db, project)
    assert "Assistant silent" not in after["rules"]
    assert '"threshold": 0.1' in after["rules"]["LLM error rate"][1]
    assert "NewErrorGroup" in after["rules"], "built-in rules are never pruned"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("window: 5m", "window: 5s"), "rules[0] 'LLM error rate': query.window: must be between"),
        (('op: ">"', 'op: "=>"'), "rules[0] 'LLM error rate': condition.op"),
        (
            ("channels: [oncall]\n  - name: Assistant", "channels: [pager]\n  - name: Assistant"),
            "rules[0] 'LLM error rate': channels: no channel named 'pager'",
        ),
        (("objective: 99.5", "objective: 100"), "slos[0] 'chat availability': objective"),
        (("type: webhook", "type: email"), "channels[0] 'oncall': type"),
        (
            ("url: ${ONCALL_URL}", "url: ${NOT_SET_ANYWHERE}"),
            "channels[0] 'oncall': environment variable NOT_SET_ANYWHERE is not set",
        ),
        (("rules:", "rulez:"), "unknown section 'rulez'"),
        (
            (
                "  - name: NewErrorGroup\n    builtin: true",
                "  - name: NewErrorGroup\n    builtin: true\n    for: 1m",
            ),
            "rules[2] 'NewErrorGroup': for: a built-in rule's for cannot change",
        ),
    ],
)
async def test_errors_name_the_file_item_and_field_and_change_nothing(
    database_url: str,
    db: asyncpg.Connection,
    tmp_path: Path,
    change: tuple[str, str],
    message: str,
) -> None:
    project = f"apply-{uuid.uuid4().hex[:6]}"
    assert change[0] in FILE, change
    path = _write(tmp_path, FILE.replace(change[0], change[1], 1), "bad.yaml")
    result = _cli(database_url, "apply", "-f", path, "--project", project, env=ENV)
    assert result.returncode == 2, result.stdout
    assert f"bad.yaml: {message}" in result.stderr, result.stderr
    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project)
    if project_id is not None:
        assert (
            await db.fetchval("SELECT count(*) FROM channels WHERE project_id = $1", project_id)
            == 0
        )
        assert (
            await db.fetchval(
                "SELECT count(*) FROM alert_rules WHERE project_id = $1 AND builtin IS NULL",
                project_id,
            )
            == 0
        )


async def test_masked_channel_needs_a_stored_secret(database_url: str, tmp_path: Path) -> None:
    masked = "channels:\n  - {name: oncall, type: webhook, url: 'https://pager.example/***'}\n"
    result = _cli(
        database_url,
        "apply",
        "-f",
        _write(tmp_path, masked),
        "--project",
        f"p-{uuid.uuid4().hex[:6]}",
    )
    assert result.returncode == 2
    assert "masked (***) and the project has no channel of this name" in result.stderr


def test_export_of_an_unknown_project_is_an_error(database_url: str) -> None:
    result = _cli(database_url, "export", "--project", f"nobody-{uuid.uuid4().hex[:6]}")
    assert result.returncode == 2 and "no project named" in result.stderr


async def test_ended_silences_in_a_file_are_skipped(database_url: str, tmp_path: Path) -> None:
    text = (
        "silences:\n  - name: old-window\n    matchers: [{name: service, value: a}]\n"
        "    starts_at: '2020-01-01T00:00:00Z'\n    ends_at: '2020-01-02T00:00:00Z'\n"
    )
    result = _cli(
        database_url,
        "apply",
        "-f",
        _write(tmp_path, text),
        "--project",
        f"p-{uuid.uuid4().hex[:6]}",
    )
    assert result.returncode == 0, result.stderr
    assert "skipped silence 'old-window': it has ended" in result.stdout


def test_the_documented_file_is_valid() -> None:
    text = (ROOT / "docs" / "alerting.md").read_text()
    section = text[text.index("## Alerting as code") :]
    example = section[section.index("```yaml\n") + 8 : section.index("```\n", 8)]
    env = {"ONCALL_WEBHOOK_URL": "https://a.example/h", "ONCALL_TOKEN": "t"}
    env["SLACK_WEBHOOK_URL"] = "https://hooks.slack.example/x"
    config = load(example, "docs/alerting.md", env)
    assert {item.name for item in config.items["rules"]} >= {"LLMErrorRate", "AssistantSilent"}
    assert config.items["slos"][0].channel_names == ("oncall",)
