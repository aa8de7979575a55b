"""A small real OpenAI-compatible HTTP server for tests: POST /v1/chat/completions only.

It answers as OpenAI's Chat Completions API does (https://platform.openai.com/docs/api-reference/
chat): a completion with `usage`; when the request has `tools` and the last message is not a
tool result, a `tool_calls` answer; with `stream: true`, server-sent events of
`chat.completion.chunk` objects ending in `data: [DONE]`, the last one before it carrying `usage`
(and no choices) when `stream_options.include_usage` is set. The usage of each kind of answer
is fixed (`USAGE`) so tests know what the instrumentation should report.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CREATED = 1_767_225_600  # a fixed `created` time: nothing reads it


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int

    def as_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }


USAGE = {
    "text": Usage(prompt_tokens=1200, completion_tokens=300, cached_tokens=1024),
    "tool_call": Usage(prompt_tokens=850, completion_tokens=24, cached_tokens=512),
    "stream": Usage(prompt_tokens=2100, completion_tokens=180, cached_tokens=1536),
}
TOOL_CALL_ID = "call_weather_1"
ANSWER = "It is sunny in Paris."


def served_model(requested: str) -> str:
    """The dated snapshot the server says answered, as OpenAI does for an alias."""
    return f"{requested}-2024-07-18"


@dataclass
class FakeOpenAI:
    url: str  # base URL for the client, ending in /v1
    requests: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the test's output is its assertions

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid"}})
            return
        self.server.fake.requests.append(body)
        model = served_model(body["model"])
        if body.get("stream"):
            self._stream(
                model, include_usage=bool((body.get("stream_options") or {}).get("include_usage"))
            )
            return
        last_role = (body.get("messages") or [{}])[-1].get("role")
        if body.get("tools") and last_role != "tool":
            kind = "tool_call"
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": TOOL_CALL_ID,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            }
            finish_reason = "tool_calls"
        else:
            kind = "text"
            message = {"role": "assistant", "content": "Hello!"}
            finish_reason = "stop"
        self._json(
            200,
            {
                "id": f"chatcmpl-{kind}",
                "object": "chat.completion",
                "created": CREATED,
                "model": model,
                "system_fingerprint": "fp_test",
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": finish_reason,
                        "logprobs": None,
                    }
                ],
                "usage": USAGE[kind].as_json(),
            },
        )

    def _stream(self, model: str, *, include_usage: bool) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        base = {
            "id": "chatcmpl-stream",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_test",
        }
        words = ANSWER.split(" ")
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"content": word if i == 0 else f" {word}"} for i, word in enumerate(words)]
        for delta in deltas:
            self._event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self._event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if include_usage:
            self._event({**base, "choices": [], "usage": USAGE["stream"].as_json()})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _event(self, chunk: dict[str, Any]) -> None:
        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())

    def _json(self, status: int, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenAI


@contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    """Serve on a free loopback port for the duration of the block."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeOpenAI(url=f"http://127.0.0.1:{server.server_port}/v1")
    thread = threading.Thread(target=server.serve_forever, name="fake-openai", daemon=True)
    thread.start()
    try:
        yield server.fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
