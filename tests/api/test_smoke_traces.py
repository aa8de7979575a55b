"""The spec's trace example through a real collector and back through the API."""

from __future__ import annotations

import httpx
from support import load_example, shift_to_now


async def test_example_trace_round_trip(collector, make_key, project_name) -> None:
    key = await make_key(project_name, "ingest", "read")
    document = shift_to_now(load_example("trace.json"))
    response = httpx.post(
        f"{collector.url}/v1/traces", json=document, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    trace = httpx.get(
        f"{collector.url}/api/v1/traces/5B8EFFF798038103D269B633813FC60C",
        headers={"x-api-key": key},
    ).json()
    assert trace["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert trace["spans"][0]["attributes"] == {"my.span.attr": "some value"}
