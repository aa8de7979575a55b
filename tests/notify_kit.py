"""Test helpers for notifications: golden payload files, a recording HTTP receiver, and
alert rows written the way the evaluator writes them."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg

from app.domain.alert_state import fingerprint

EXTERNAL_URL = "https://telemetry.example.com"
GOLDEN = Path(__file__).resolve().parent / "fixtures" / "notify"
# `UPDATE_GOLDEN=1 pytest tests/domain/test_notify_payloads.py` rewrites the files; review
# the diff before committing it.
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def golden(name: str, actual: Any) -> Any:
    """The golden file's document; asserts `actual` equals it (or writes it when updating)."""
    path = GOLDEN / name
    if UPDATE:
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
    expected = json.loads(path.read_text())
    assert actual == expected, f"{name} differs from the golden file"
    # Key order too: the bodies are sent in the order Alertmanager writes them.
    assert json.dumps(actual) == json.dumps(expected), f"{name}: keys in another order"
    return expected


def normalised(payload: Any, replacements: dict[str, str]) -> Any:
    """A payload with run-dependent strings (times, ids, ports) replaced by names."""
    text = json.dumps(payload)
    for value, name in replacements.items():
        text = text.replace(value, name)
    return json.loads(text)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server in a thread that records requests and answers from a script:
    `answers` is consumed one per request (then `default`); an answer is a status code,
    or ("hang", seconds) to hold the request before answering 200."""

    answers: list[Any] = field(default_factory=list)
    default: Any = 200
    requests: list[Request] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def start(self) -> Receiver:
        receiver = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with lock:
                    receiver.requests.append(
                        Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    answer = receiver.answers.pop(0) if receiver.answers else receiver.default
                headers: dict[str, str] = {}
                if isinstance(answer, tuple) and answer[0] == "hang":
                    time.sleep(answer[1])
                    answer = 200
                elif isinstance(answer, tuple):
                    answer, headers = answer
                try:
                    self.send_response(answer)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up on a hanging answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def bodies(self) -> list[Any]:
        return [request.json() for request in self.requests]


@contextmanager
def receiving(*answers: Any, default: Any = 200) -> Iterator[Receiver]:
    receiver = Receiver(list(answers), default).start()
    try:
        yield receiver
    finally:
        receiver.stop()


async def insert_rule(
    db: asyncpg.Connection, project_id: int, name: str, channels: list[int], **spec: Any
) -> int:
    document = {
        "name": name,
        "signal": "spans",
        "query": {"aggregation": "error_rate", "window": "5m", "group_by": ["service"]},
        "condition": {"op": ">", "threshold": 0.05},
        "for": "0s",
        "severity": "critical",
        "labels": {},
        "annotations": {},
        "channels": channels,
        "enabled": True,
        **spec,
    }
    return await db.fetchval(
        "INSERT INTO alert_rules (project_id, name, signal, spec) VALUES ($1, $2, $3, $4)"
        " RETURNING id",
        project_id,
        name,
        document["signal"],
        json.dumps(document),
    )


async def fire(
    db: asyncpg.Connection,
    project_id: int,
    rule_id: int,
    rule_name: str,
    labels: dict[str, str],
    at: datetime,
    *,
    annotations: dict[str, str] | None = None,
    value: float = 0.25,
) -> int:
    """A firing alert as the evaluator writes one (alertname and severity in its labels)."""
    labels = {"alertname": rule_name, "severity": "critical", **labels}
    return await db.fetchval(
        "INSERT INTO alerts (project_id, rule_id, rule_name, fingerprint, labels, annotations,"
        " state, value, active_at, fired_at, last_evaluated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, 'firing', $7, $8, $8, $8) RETURNING id",
        project_id,
        rule_id,
        rule_name,
        fingerprint(labels),
        json.dumps(labels),
        json.dumps(annotations or {}),
        value,
        at,
    )


async def resolve(db: asyncpg.Connection, alert_id: int, at: datetime) -> None:
    await db.execute(
        "UPDATE alerts SET state = 'resolved', resolved_at = $2, last_evaluated_at = $2"
        " WHERE id = $1",
        alert_id,
        at,
    )
