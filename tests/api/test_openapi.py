"""The OpenAPI description lists every endpoint of the contract that exists, is a valid
OpenAPI 3.1 document whose references all resolve, and /docs works without network access."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from app.api.docs import ASSETS_DIR

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
    "/api/v1/alert-rules": "post",
    "/api/v1/alert-rules/{rule_id}": "patch",
    "/api/v1/alert-rules/preview": "post",
    "/api/v1/alerts": "get",
    "/api/v1/alerts/{alert_id}": "get",
    "/api/v1/silences": "post",
    "/api/v1/silences/{silence_id}": "delete",
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


@pytest.fixture
async def document(anonymous: httpx.AsyncClient) -> dict[str, Any]:
    response = await anonymous.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _references(item)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref}: only references inside the document are expected"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_every_reference_resolves_and_the_document_is_valid_openapi_3_1(
    document: dict[str, Any],
) -> None:
    references = _references(document)
    assert references  # the check below has something to check
    for ref in references:
        _resolve(document, ref)
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises OpenAPIValidationError with the first problem
    # The native bodies describe their nested items (events, a log's error) in place.
    spans = document["paths"]["/api/v1/ingest/spans"]["post"]["requestBody"]
    span = spans["content"]["application/json"]["schema"]["properties"]["spans"]["items"]
    assert "name" in str(span["properties"]["events"])


def test_key_schemes_are_declared_on_every_secured_operation(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"] == {
        **schemes["apiKey"],
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            secured = path.startswith(("/v1/", "/api/v1/"))
            expected = [{"bearer": []}, {"apiKey": []}] if secured else None
            assert operation.get("security") == expected, (method, path)


async def test_docs_page_loads_only_packaged_assets(anonymous: httpx.AsyncClient) -> None:
    page = await anonymous.get("/docs")
    assert page.status_code == 200
    html = page.text
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert len(assets) == 3, assets  # script, stylesheet, icon
    assert not re.search(r"https?://", html), "the docs page must not load from the network"
    assert "validatorUrl" in html and '"validatorUrl": null' in html
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        response = await anonymous.get(asset)
        assert response.status_code == 200, asset
        assert response.content == (ASSETS_DIR / asset.rsplit("/", 1)[1]).read_bytes()
    # No second documentation page that would need a CDN.
    assert (await anonymous.get("/redoc")).status_code == 404
