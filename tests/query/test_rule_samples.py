"""Rule samples of logs and errors rules: counts, rates, absent, filters and group keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.alert_rules import RuleSample, parse_rule
from app.query.rule_values import rule_samples


class Rules:
    """Samples of rules over one project at one moment."""

    def __init__(self, engine: AsyncEngine, project_id: int, now: datetime) -> None:
        self.engine, self.project_id, self.now = engine, project_id, now

    async def samples(
        self,
        signal: str,
        aggregation: str,
        window: str = "5m",
        filters: dict | None = None,
        group_by: list[str] | None = None,
        now: datetime | None = None,
    ) -> list[RuleSample]:
        body: dict = {
            "name": "r",
            "signal": signal,
            "query": {
                "aggregation": aggregation,
                "window": window,
                "filters": filters or {},
                "group_by": group_by or [],
            },
        }
        if aggregation != "absent":
            body["condition"] = {"op": ">", "threshold": 0}
        async with self.engine.connect() as connection:
            found = await rule_samples(
                connection, self.project_id, parse_rule(body), now or self.now
            )
        return sorted(found, key=lambda sample: sorted(sample.labels.items()))


async def _rules(db, engine: AsyncEngine, project_name: str, now: datetime) -> Rules:
    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project_name)
    return Rules(engine, project_id, now)


async def _post(client: httpx.AsyncClient, signal: str, items: list[dict]) -> dict:
    response = await client.post(f"/api/v1/ingest/{signal}", json={signal: items})
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == [], response.text
    return response.json()


async def test_log_counts_rates_filters_and_groups(client, engine, db, project_name) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    service = f"agent-{uuid.uuid4().hex[:6]}"

    def log(minutes_ago: float, level: str, message: str, **attributes: object) -> dict:
        moment = now - timedelta(minutes=minutes_ago)
        return {"timestamp": moment.isoformat(), "level": level, "message": message,
                "service": service, "attributes": attributes}  # fmt: skip

    await _post(
        client,
        "logs",
        [
            log(1, "info", "tool call started", tool="search"),
            log(2, "warn", "tool call slow", tool="search"),
            log(3, "error", "tool call failed timeout", tool="shell"),
            log(4, "error", "model refused", tool="shell"),
            log(20, "error", "old failure", tool="shell"),  # outside a 5m window
        ],
    )
    rules = await _rules(db, engine, project_name, now)
    mine = {"service": service}
    assert await rules.samples("logs", "count", filters=mine) == [RuleSample({}, 4.0)]
    assert await rules.samples("logs", "rate", filters=mine) == [RuleSample({}, 4 / 300)]

    by_level = await rules.samples(
        "logs",
        "count",
        filters={**mine, "level": "warn"},
        group_by=["level", "tool", "service.name"],
    )
    assert [(sample.labels, sample.value) for sample in by_level] == [
        ({"level": "error", "tool": "shell", "service.name": service}, 2.0),
        ({"level": "warn", "tool": "search", "service.name": service}, 1.0),
    ]
    words = {**mine, "q": "tool failed", "attributes": {"tool": "shell"}}
    assert await rules.samples("logs", "count", filters=words) == [RuleSample({}, 1.0)]
    nobody = await rules.samples("logs", "count", filters={"service": "nobody"}, group_by=["level"])
    assert nobody == [], "a group with no logs has no sample"


async def test_log_absent_with_and_without_group_by(client, engine, db, project_name) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    quiet, talking = f"quiet-{uuid.uuid4().hex[:6]}", f"talking-{uuid.uuid4().hex[:6]}"
    await _post(
        client,
        "logs",
        [
            {
                "timestamp": (now - timedelta(minutes=ago)).isoformat(),
                "message": "hi",
                "service": service,
                "attributes": {"team": "a"},
            }  # fmt: skip
            for service, ago in ((quiet, 120), (talking, 120), (talking, 1))
        ],
    )
    rules = await _rules(db, engine, project_name, now)
    team = {"attributes": {"team": "a"}}
    silent = await rules.samples("logs", "absent", "10m", {"service": quiet})
    assert silent == [RuleSample({}, 1.0)]
    assert await rules.samples("logs", "absent", "10m", {"service": talking}) == []
    grouped = await rules.samples("logs", "absent", "10m", team, ["service"])
    assert grouped == [RuleSample({"service": quiet}, 1.0)]
    # Only groups seen in the day before the window count as "should be reporting".
    later = await rules.samples(
        "logs", "absent", "10m", team, ["service"], now + timedelta(hours=23)
    )
    assert later == [RuleSample({"service": talking}, 1.0)]


async def test_error_counts_new_groups_and_group_context(client, engine, db, project_name) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    marker = uuid.uuid4().hex[:8]

    def error(minutes_ago: float, fingerprint: str, model: str) -> dict:
        moment = now - timedelta(minutes=minutes_ago)
        return {"type": "ToolTimeout", "message": f"tool {fingerprint} timed out after 30s",
                "service": "agent", "timestamp": moment.isoformat(),
                "fingerprint": [fingerprint], "attributes": {"model": model}}  # fmt: skip

    old, new = f"old-{marker}", f"new-{marker}"
    await _post(client, "errors", [error(90, old, "a"), error(2, old, "a"), error(1, old, "b"),
                                   error(3, new, "b")])  # fmt: skip
    rules = await _rules(db, engine, project_name, now)
    groups = await db.fetch(
        "SELECT fingerprint FROM error_groups WHERE project_id = $1 ORDER BY first_seen",
        rules.project_id,
    )
    new_fingerprint = groups[-1]["fingerprint"]

    counted = await rules.samples("errors", "count", group_by=["fingerprint"])
    assert sorted(sample.value for sample in counted) == [1.0, 2.0]
    for sample in counted:
        assert (sample.labels["service"], sample.labels["type"]) == ("agent", "ToolTimeout")
        assert sample.annotations and "timed out" in sample.annotations["message"]

    new_groups = await rules.samples("errors", "new_groups", "10m", group_by=["fingerprint"])
    assert [(s.labels["fingerprint"], s.value) for s in new_groups] == [(new_fingerprint, 1.0)]
    per_model = await rules.samples(
        "errors", "new_groups", "10m", {"attributes": {"model": "b"}}, ["model", "service"]
    )
    assert per_model == [RuleSample({"model": "b", "service": "agent"}, 1.0)]
    by_model = await rules.samples(
        "errors", "count", filters={"type": "ToolTimeout"}, group_by=["model"]
    )
    assert by_model == [RuleSample({"model": "a"}, 1.0), RuleSample({"model": "b"}, 2.0)]
    assert await rules.samples("errors", "absent", filters={"service": "agent"}) == []
