"""Hostile headers on the real server, sent as raw bytes (HTTP clients refuse to send most of
them): a clean 401 saying what is wrong, request ids that are safe to echo and log."""

from __future__ import annotations

import json
import re
import socket

import pytest
from support import Collector


def raw_request(
    collector: Collector, method: str, path: str, *headers: bytes
) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly these header lines and no body; (status, headers, body)."""
    request = f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n".encode()
    request += b"Content-Length: 0\r\n" if method == "POST" else b""
    request += b"".join(line + b"\r\n" for line in headers) + b"\r\n"
    with socket.create_connection(("127.0.0.1", collector.port), timeout=30) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    answer_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        answer_headers[name.strip().lower()] = value.strip()
    if answer_headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return int(status_line.split()[1]), answer_headers, body


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out


def error_of(body: bytes) -> str:
    document = json.loads(body)
    assert set(document) == {"error"} and set(document["error"]) == {"code", "message"}
    return document["error"]["message"]


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (b"Authorization: Bearer ", "no key after 'Bearer'"),
        (b"Authorization: Bearer \t ", "no key after 'Bearer'"),
        (b"Authorization: Bearer%20", "no key after 'Bearer'"),
        (b"Authorization: Bearer tc_\xff\xfe\xc3\xa9", "invalid or revoked"),
        (b"Authorization: Bearer%20%ff%fe", "invalid or revoked"),
        (b"x-api-key: \xc3\xa9\xff", "invalid or revoked"),
        (b"Authorization: \xc3\xa9t\xc3\xa9", "needs the Bearer scheme"),
        (b"Authorization: T\xc3\xa9st abc", "is not supported"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/v1/traces"), ("POST", "/api/v1/ingest/spans")]
)
def test_malformed_and_non_ascii_keys_are_a_clean_401(
    collector: Collector, header: bytes, says: str, method: str, path: str
) -> None:
    status, headers, body = raw_request(collector, method, path, header)
    assert status == 401, body
    assert says in error_of(body)
    assert headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "request_id",
    [b"\xff\xfeabc", b"\xc3\xa9t\xc3\xa9", b"a" * 129, b"two words", b""],
    ids=["latin-1", "utf-8", "too long", "space", "empty"],
)
def test_request_ids_that_are_unsafe_to_echo_are_replaced(
    collector: Collector, request_id: bytes
) -> None:
    status, headers, _ = raw_request(collector, "GET", "/healthz", b"X-Request-ID: " + request_id)
    assert status == 200
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"]), headers


def test_a_visible_ascii_request_id_is_kept(collector: Collector) -> None:
    status, headers, _ = raw_request(collector, "GET", "/healthz", b"X-Request-ID: run-42/a.b:c")
    assert (status, headers["x-request-id"]) == (200, "run-42/a.b:c")
