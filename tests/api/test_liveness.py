"""/healthz is answered by the connection's protocol, in the loop callback that read the
request (app/connections.py): the same answer, log line and histogram sample as the
application's, on a connection that goes on like any other (keep-alive, pipelining,
HTTP/1.0, HEAD)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import httpx
from support import Collector, RawHttp, metric_sum


def _healthz_count(collector: Collector) -> float:
    text = httpx.get(f"{collector.url}/metrics", timeout=10).text
    return metric_sum(
        text, "telemetry_http_request_duration_seconds_count", route="/healthz", status="2xx"
    )


def test_liveness_and_application_answers_share_a_keep_alive_connection(
    collector: Collector,
) -> None:
    raw = RawHttp(collector.port)
    try:
        for path in ("/healthz", "/readyz", "/healthz", "/api/v1/traces", "/healthz"):
            answer = raw.request("GET", path)
            expected = 401 if path == "/api/v1/traces" else 200
            assert answer.status == expected, (path, answer)
            if path == "/healthz":
                assert json.loads(answer.body) == {"status": "ok"}
                assert answer.headers["content-type"] == "application/json"
                assert answer.headers["content-length"] == str(len(answer.body))
                assert "date" in answer.headers and "server" in answer.headers
                assert "connection" not in answer.headers
    finally:
        raw.close()


def test_pipelined_requests_are_answered_in_order(collector: Collector) -> None:
    raw = RawHttp(collector.port)
    try:
        heads = [
            RawHttp.head("GET", path, {"X-Request-ID": f"pipelined-{number}"})
            for number, path in enumerate(["/readyz", "/healthz", "/openapi.json", "/healthz"])
        ]
        raw.send(b"".join(heads))  # all four in one write: the last three wait their turn
        answers = [raw.response() for _ in heads]
    finally:
        raw.close()
    assert [answer.headers["x-request-id"] for answer in answers] == [
        f"pipelined-{number}" for number in range(4)
    ]
    assert [answer.status for answer in answers] == [200, 200, 200, 200]
    assert json.loads(answers[0].body)["status"] == "ok"
    assert json.loads(answers[2].body)["openapi"]
    assert json.loads(answers[3].body) == {"status": "ok"}


def test_head_and_http_1_0_and_connection_close(collector: Collector) -> None:
    raw = RawHttp(collector.port)
    try:
        raw.send(b"HEAD /healthz HTTP/1.1\r\nHost: c\r\n\r\n")
        time.sleep(0.2)
        raw.send(b"GET /healthz HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n")
        assert raw.closed_by_server()
        head, rest = raw._buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"content-length: 15\r\n" in head.lower()
        # No body after the HEAD answer: the next bytes are the GET's answer, then the close.
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), rest
        assert b"connection: close\r\n" in rest.lower()
        assert rest.endswith(b'\r\n\r\n{"status":"ok"}')
    finally:
        raw.close()

    old = RawHttp(collector.port)
    try:
        old.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert old.closed_by_server()
        assert old._buffer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert old._buffer.endswith(b'{"status":"ok"}')
    finally:
        old.close()


def _logged(collector: Collector, request_id: str) -> list[dict[str, object]]:
    assert collector.log_path is not None
    deadline = time.monotonic() + 5
    while True:
        lines = [
            json.loads(line)
            for line in collector.log_path.read_text().splitlines()
            if request_id in line
        ]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_a_liveness_answer_is_logged_and_counted_as_the_application_would(
    start_collector: Callable[..., Collector],
) -> None:
    collector = start_collector(env={"TELEMETRY_LOG_LEVEL": "info"})
    before = _healthz_count(collector)
    probe, other = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("probe", "other"))
    answer = httpx.get(f"{collector.url}/healthz", headers={"X-Request-ID": probe})
    assert answer.headers["x-request-id"] == probe
    httpx.get(f"{collector.url}/readyz", headers={"X-Request-ID": other})
    assert _healthz_count(collector) == before + 1
    (line,) = _logged(collector, probe)
    (application_line,) = _logged(collector, other)
    assert line.keys() == application_line.keys()
    assert {key: line[key] for key in ("message", "method", "path", "status", "request_id")} == {
        "message": "request",
        "method": "GET",
        "path": "/healthz",
        "status": 200,
        "request_id": probe,
    }
