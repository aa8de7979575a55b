"""The OpenAPI description lists every endpoint of the contract that exists."""

from __future__ import annotations

EXPECTED = {
    "/v1/traces": "post",
    "/v1/logs": "post",
    "/v1/metrics": "post",
    "/api/v1/ingest/spans": "post",
    "/api/v1/ingest/logs": "post",
    "/api/v1/ingest/metrics": "post",
    "/api/v1/ingest/errors": "post",
    "/api/v1/traces": "get",
    "/api/v1/traces/{trace_id}": "get",
    "/api/v1/services": "get",
    "/api/v1/logs": "get",
    "/api/v1/metrics": "get",
    "/api/v1/metrics/query": "get",
    "/api/v1/errors": "get",
    "/api/v1/errors/{fingerprint}": "patch",
    "/api/v1/dashboard/overview": "get",
    "/api/v1/dashboard/llm": "get",
    "/api/v1/slos": "post",
    "/api/v1/slos/{slo_id}": "put",
    "/api/v1/slos/{slo_id}/status": "get",
    "/api/v1/slos/{slo_id}/history": "get",
    "/api/v1/slos/gate": "get",
    "/healthz": "get",
    "/readyz": "get",
    "/metrics": "get",
}


async def test_openapi_describes_the_contract(anonymous) -> None:
    response = await anonymous.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    missing = {path for path, method in EXPECTED.items() if method not in paths.get(path, {})}
    assert missing == set()
    body = paths["/api/v1/ingest/spans"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["spans"]["items"]["required"]
    assert (await anonymous.get("/docs")).status_code == 200
