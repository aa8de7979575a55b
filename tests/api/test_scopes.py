"""Scopes on every endpoint the OpenAPI document lists: 401 without a key, 403 without the
scope, and an `admin` key allowed everywhere (it implies `ingest` and `read`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
from otlp_testkit import simple_span, stored_span_ids, traces_json
from support import Collector

MakeKey = Callable[..., Any]
PUBLIC = {"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"}
# Endpoints that must be among those checked, so the check cannot quietly shrink.
READ_PATHS = {
    "/api/v1/traces",
    "/api/v1/traces/{trace_id}",
    "/api/v1/services",
    "/api/v1/logs",
    "/api/v1/metrics",
    "/api/v1/metrics/query",
    "/api/v1/errors",
    "/api/v1/errors/{fingerprint}",
    "/api/v1/dashboard/overview",
    "/api/v1/dashboard/llm",
}
INGEST_PATHS = {
    "/v1/traces",
    "/v1/logs",
    "/v1/metrics",
    "/api/v1/ingest/spans",
    "/api/v1/ingest/logs",
    "/api/v1/ingest/metrics",
    "/api/v1/ingest/errors",
}
# A value every path parameter accepts in form (32 hex digits is also an integer).
PARAMETER = "1" * 32


def _operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        if path not in PUBLIC
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


@pytest.fixture(scope="module")
def operations(collector: Collector) -> list[tuple[str, str]]:
    document = httpx.get(f"{collector.url}/openapi.json", timeout=30).json()
    found = _operations(document)
    assert READ_PATHS | INGEST_PATHS <= {path for _, path in found}
    return found


def _is_ingest(path: str) -> bool:
    return path.startswith(("/v1/", "/api/v1/ingest/"))


async def _call(
    http: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    url = re.sub(r"\{[^}]+\}", PARAMETER, path)
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    return await http.request(
        method, url, content=body, headers={"content-type": "application/json", **headers}
    )


async def test_every_endpoint_answers_401_without_a_valid_key(
    anonymous: httpx.AsyncClient, operations: list[tuple[str, str]]
) -> None:
    for method, path in operations:
        for headers in ({}, {"authorization": "Bearer tc_not-a-key"}):
            response = await _call(anonymous, method, path, headers)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer", (method, path)


async def test_every_endpoint_answers_403_without_its_scope(
    anonymous: httpx.AsyncClient,
    operations: list[tuple[str, str]],
    make_key: MakeKey,
    project_name: str,
) -> None:
    ingest_only = await make_key(project_name, "ingest")
    read_only = await make_key(project_name, "read")
    for method, path in operations:
        key = read_only if _is_ingest(path) else ingest_only
        response = await _call(anonymous, method, path, {"x-api-key": key})
        assert response.status_code == 403, (method, path, response.text)


async def test_admin_key_is_allowed_everywhere(
    anonymous: httpx.AsyncClient,
    operations: list[tuple[str, str]],
    make_key: MakeKey,
    project_name: str,
    db: asyncpg.Connection,
) -> None:
    admin = {"authorization": f"Bearer {await make_key(project_name, 'admin')}"}
    for method, path in operations:
        response = await _call(anonymous, method, path, admin)
        assert response.status_code not in (401, 403), (method, path, response.text)
        assert response.status_code < 500, (method, path, response.text)

    # And it really sends and reads: a span in, the same span out.
    span = simple_span()
    sent = await anonymous.post("/v1/traces", json=traces_json([span]), headers=admin)
    assert sent.status_code == 200, sent.text
    assert len(await stored_span_ids(db, project_name, [span.trace_id])) == 1
    read = await anonymous.get(f"/api/v1/traces/{span.trace_id}", headers=admin)
    assert read.status_code == 200, read.text
    assert [item["span_id"] for item in read.json()["spans"]] == [span.span_id]
