"""Readiness across rolling upgrades, and percent-encoded Authorization headers."""

from __future__ import annotations

import httpx

from app.api.health import schema_check
from app.db.migrate import head_revision, known_revisions


def test_schema_check_accepts_head_and_newer_but_not_older() -> None:
    head = head_revision()
    assert schema_check(head, head) == "ok"
    assert schema_check("9999_from_a_newer_release", head) == "ok"
    older = sorted(known_revisions() - {head})[0]
    assert "run `telemetry-collector migrate`" in schema_check(older, head)
    assert schema_check(None, head) != "ok"


async def test_percent_encoded_bearer_header_is_accepted(collector, key) -> None:
    # OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<key>, passed through undecoded.
    async with httpx.AsyncClient(base_url=collector.url) as http:
        response = await http.get("/api/v1/errors", headers={"Authorization": f"Bearer%20{key}"})
        assert response.status_code == 200, response.text
        wrong = await http.get("/api/v1/errors", headers={"Authorization": "Bearer%20nope"})
        assert wrong.status_code == 401
