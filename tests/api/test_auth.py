"""API keys: 401 without a valid key, 403 without the scope, no data across projects."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
from google.rpc import code_pb2, status_pb2
from otlp_testkit import (
    JSON,
    PROTOBUF,
    new_trace_id,
    simple_span,
    stored_span_ids,
    traces_json,
    traces_pb,
)
from support import Collector

MakeKey = Callable[..., Any]


def _otlp_json_error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == code
    return body["message"]


def _otlp_protobuf_error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROTOBUF
    answer = status_pb2.Status.FromString(response.content)
    assert answer.code == code
    return answer.message


def _api_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    return body["error"]["message"]


async def _send(
    http: httpx.AsyncClient, media: str, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, str]:
    """One span to /v1/traces; returns the response and its trace id."""
    span = simple_span()
    if media == JSON:
        body = httpx.Request("POST", "/", json=traces_json([span])).content
    else:
        body = traces_pb([span]).SerializeToString()
    response = await http.post(
        "/v1/traces", content=body, headers={"content-type": media, **(headers or {})}
    )
    return response, span.trace_id


# ---------------------------------------------------------------- OTLP paths


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({}, "missing API key"),
        ({"Authorization": "Bearer"}, "no key after 'Bearer'"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "scheme 'Basic' is not supported"),
        ({"Authorization": "tc_just-the-key"}, "needs the Bearer scheme"),
        ({"Authorization": "tc_just-the-key and more"}, "scheme is not supported"),
        ({"x-api-key": ""}, "missing API key"),
    ],
    ids=["none", "empty bearer", "basic", "no scheme", "a key as scheme", "empty x-api-key"],
)
async def test_missing_key_is_401_in_json(
    anonymous: httpx.AsyncClient, headers: dict[str, str], says: str
) -> None:
    response, _ = await _send(anonymous, JSON, headers)
    message = _otlp_json_error(response, 401, code_pb2.UNAUTHENTICATED)
    assert says in message
    assert "tc_just-the-key" not in message  # what may be a key is never echoed
    assert response.headers["www-authenticate"] == "Bearer"


async def test_missing_key_is_401_in_protobuf(anonymous: httpx.AsyncClient) -> None:
    response, _ = await _send(anonymous, PROTOBUF)
    message = _otlp_protobuf_error(response, 401, code_pb2.UNAUTHENTICATED)
    assert "Authorization: Bearer" in message
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("media", [JSON, PROTOBUF])
@pytest.mark.parametrize("header", ["Authorization", "x-api-key"])
async def test_wrong_key_is_401(anonymous: httpx.AsyncClient, media: str, header: str) -> None:
    value = "tc_not-a-real-key-at-all"
    value = f"Bearer {value}" if header == "Authorization" else value
    response, _ = await _send(anonymous, media, {header: value})
    check = _otlp_json_error if media == JSON else _otlp_protobuf_error
    message = check(response, 401, code_pb2.UNAUTHENTICATED)
    assert "invalid or revoked" in message


async def test_revoked_key_is_401(
    anonymous: httpx.AsyncClient, make_key: MakeKey, project_name: str, db: asyncpg.Connection
) -> None:
    key = await make_key(project_name, "ingest")
    await db.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1",
        hashlib.sha256(key.encode()).digest(),
    )
    response, _ = await _send(anonymous, JSON, {"Authorization": f"Bearer {key}"})
    assert "invalid or revoked" in _otlp_json_error(response, 401, code_pb2.UNAUTHENTICATED)


@pytest.mark.parametrize("media", [JSON, PROTOBUF])
async def test_read_only_key_cannot_ingest(
    anonymous: httpx.AsyncClient,
    make_key: MakeKey,
    project_name: str,
    db: asyncpg.Connection,
    media: str,
) -> None:
    key = await make_key(project_name, "read")
    response, trace_id = await _send(anonymous, media, {"Authorization": f"Bearer {key}"})
    check = _otlp_json_error if media == JSON else _otlp_protobuf_error
    message = check(response, 403, code_pb2.PERMISSION_DENIED)
    assert "'ingest'" in message
    assert await stored_span_ids(db, project_name, [trace_id]) == []


@pytest.mark.parametrize(
    "headers",
    [
        lambda key: {"Authorization": f"Bearer {key}"},
        lambda key: {"Authorization": f"bearer {key}"},
        lambda key: {"Authorization": f"Bearer   {key}"},
        lambda key: {"x-api-key": key},
    ],
    ids=["Bearer", "lowercase scheme", "extra spaces", "x-api-key"],
)
async def test_both_headers_work(
    anonymous: httpx.AsyncClient,
    make_key: MakeKey,
    project_name: str,
    db: asyncpg.Connection,
    headers: Callable[[str], dict[str, str]],
) -> None:
    key = await make_key(project_name, "ingest", "read")
    response, trace_id = await _send(anonymous, PROTOBUF, headers(key))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PROTOBUF
    assert response.content == b""
    assert len(await stored_span_ids(db, project_name, [trace_id])) == 1
    read = await anonymous.get(f"/api/v1/traces/{trace_id}", headers=headers(key))
    assert read.status_code == 200, read.text
    assert read.json()["trace_id"] == trace_id


# ---------------------------------------------------------------- query paths


async def test_query_without_key_is_401(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get(f"/api/v1/traces/{new_trace_id()}")
    assert "missing API key" in _api_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    response = await anonymous.get(
        f"/api/v1/traces/{new_trace_id()}", headers={"x-api-key": "tc_wrong"}
    )
    assert "invalid or revoked" in _api_error(response, 401, "unauthorized")


async def test_ingest_only_key_cannot_read(
    anonymous: httpx.AsyncClient, make_key: MakeKey, project_name: str
) -> None:
    key = await make_key(project_name, "ingest")
    headers = {"Authorization": f"Bearer {key}"}
    response, trace_id = await _send(anonymous, JSON, headers)
    assert response.status_code == 200, response.text
    read = await anonymous.get(f"/api/v1/traces/{trace_id}", headers=headers)
    assert "'read'" in _api_error(read, 403, "forbidden")


async def test_projects_do_not_see_each_other(
    anonymous: httpx.AsyncClient, make_key: MakeKey, project_name: str
) -> None:
    key_a = await make_key(project_name, "ingest", "read")
    key_b = await make_key(f"{project_name}-b", "ingest", "read")
    response, trace_id = await _send(anonymous, JSON, {"Authorization": f"Bearer {key_a}"})
    assert response.status_code == 200, response.text

    own = await anonymous.get(f"/api/v1/traces/{trace_id}", headers={"x-api-key": key_a})
    assert own.status_code == 200, own.text
    assert own.json()["span_count"] == 1

    other = await anonymous.get(f"/api/v1/traces/{trace_id}", headers={"x-api-key": key_b})
    assert trace_id in _api_error(other, 404, "not_found")

    # Project B sending the same trace id does not merge into A's trace.
    span = simple_span(trace_id)
    response = await anonymous.post(
        "/v1/traces", json=traces_json([span]), headers={"x-api-key": key_b}
    )
    assert response.status_code == 200, response.text
    own = await anonymous.get(f"/api/v1/traces/{trace_id}", headers={"x-api-key": key_a})
    assert own.json()["span_count"] == 1
    theirs = await anonymous.get(f"/api/v1/traces/{trace_id}", headers={"x-api-key": key_b})
    assert [item["span_id"] for item in theirs.json()["spans"]] == [span.span_id]


@pytest.mark.parametrize("trace_id", ["xyz", "abc", "00" * 17, "g" * 32])
async def test_malformed_trace_id_is_400(client: httpx.AsyncClient, trace_id: str) -> None:
    response = await client.get(f"/api/v1/traces/{trace_id}")
    assert "32 hex characters" in _api_error(response, 400, "bad_request")


# ---------------------------------------------------------------- auth disabled


async def test_auth_disabled_uses_the_default_project(
    start_collector: Callable[..., Collector], db: asyncpg.Connection
) -> None:
    open_collector = start_collector(env={"TELEMETRY_AUTH_ENABLED": "false"})
    async with httpx.AsyncClient(base_url=open_collector.url) as http:
        response, trace_id = await _send(http, JSON)
        assert response.status_code == 200, response.text
        assert response.json() == {}
        assert len(await stored_span_ids(db, "default", [trace_id])) == 1
        read = await http.get(f"/api/v1/traces/{trace_id}")
        assert read.status_code == 200, read.text
        assert read.json()["span_count"] == 1
