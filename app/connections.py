"""HTTP connections: read timeouts, a bounded head, and a cap that leaves room for health checks.

uvicorn has no timeout for a request's head or body: a client that opens a connection and
sends nothing, or a header a byte at a time, or a body slower than that, holds the
connection for ever (2,000 such connections were held and, at 21,000, the process ran
out of file descriptors and /healthz failed). This protocol, uvicorn's httptools one with
timers added, closes a connection whose request head does not arrive within
`header_read_timeout_s`, and answers 408 to one whose body does not arrive within
`body_read_timeout_s` of its head. A head larger than `MAX_HEAD_BYTES` is answered 431.

`GET /healthz` is answered here, in the loop callback that read the request, rather than
by a task of the application that starts on the loop's next turn: under overload a turn
holds a slice of decoding and the reads and writes of many connections, and on a busy
machine each turn is also a wait for a CPU, so a liveness probe that needs one turn
instead of two is answered sooner. The answer, its log line and its histogram sample are
the ones the application gives.

Past `max_connections` open connections, a new connection may still ask for the health
endpoints (so that probes keep working while the process is flooded) but anything else is
answered 503 and closed; past `max_connections + HEALTH_RESERVE` new connections are closed
at once, before they cost more than their file descriptor.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from app.telemetry import record_request, request_id_from, request_id_var

log = logging.getLogger(__name__)

HEALTH_PATHS = frozenset({b"/healthz", b"/readyz", b"/metrics"})
ALIVE_PATH = "/healthz"
ALIVE_BODY = b'{"status":"ok"}'
HEALTH_RESERVE = 64
# A connection taken from the reserve must send its request quickly: it is only for probes.
RESERVE_HEADER_TIMEOUT_S = 2.0
# Request line plus headers; OTLP and API requests carry a handful of short headers.
MAX_HEAD_BYTES = 64 * 1024
# File descriptors kept out of the connection cap: database pools, logs, metrics files.
FD_MARGIN = 256
# Set in a request's scope when its body timed out, so it is logged as 408, not 499.
READ_TIMED_OUT = "telemetry.read_timed_out"


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int
    header_read_timeout_s: float
    body_read_timeout_s: float
    retry_after_s: int = 1


def protocol_class(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """uvicorn's `http=` protocol with these limits."""
    return type("LimitedHttpToolsProtocol", (LimitedProtocol,), {"limits": limits})


def raise_file_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards the hard one; return the connections it allows.

    Each process has its own limit, so this is per worker. The cap on connections is kept
    below it so that running out of descriptors cannot happen (an accept() that fails with
    EMFILE leaves the connection in the backlog and the loop spinning).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted + FD_MARGIN * 2)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    allowed = max(16, soft - FD_MARGIN - HEALTH_RESERVE)
    if allowed < wanted:
        log.warning(
            "connection cap lowered to fit the file descriptor limit",
            extra={"max_connections": allowed, "configured": wanted, "nofile": soft},
        )
    return min(wanted, allowed)


class LimitedProtocol(HttpToolsProtocol):
    limits: ConnectionLimits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._reserve = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        open_connections = len(self.connections)
        if open_connections > self.limits.max_connections + HEALTH_RESERVE:
            transport.abort()
            return
        self._reserve = open_connections > self.limits.max_connections
        timeout = RESERVE_HEADER_TIMEOUT_S if self._reserve else self.limits.header_read_timeout_s
        self._arm(timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._timer is None:
            self._arm(self.limits.header_read_timeout_s, self._head_timed_out)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count_head(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        self._disarm()
        if self._reserve and self.url.partition(b"?")[0] not in HEALTH_PATHS:
            app, self.app = self.app, self._over_capacity
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()
        self._arm(self.limits.body_read_timeout_s, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        scope = cycle.scope
        if app is self.app and scope["path"] == ALIVE_PATH and scope["method"] in ("GET", "HEAD"):
            self._answer_alive(cycle)
        else:
            super()._start_asgi_task(cycle, app)

    def _answer_alive(self, cycle: RequestResponseCycle) -> None:
        """Answer /healthz now, as the application would (uvicorn's headers, the request
        id, one log line, the duration histogram), and go on as after any response."""
        started = time.perf_counter()
        scope = cycle.scope
        request_id = request_id_from(scope["headers"])
        head = [STATUS_LINE[200]]
        for name, value in cycle.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(
            b"content-length: %d\r\ncontent-type: application/json\r\nx-request-id: %s\r\n"
            % (len(ALIVE_BODY), request_id.encode("ascii"))
        )
        if not cycle.keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        if scope["method"] != "HEAD":
            head.append(ALIVE_BODY)
        self.transport.write(b"".join(head))
        cycle.response_started = cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.transport.close()
        token = request_id_var.set(request_id)
        try:
            record_request(
                scope["method"], ALIVE_PATH, ALIVE_PATH, 200, time.perf_counter() - started
            )
        finally:
            request_id_var.reset(token)
        self.on_response_complete()

    async def _over_capacity(self, scope: Any, receive: Any, send: Any) -> None:
        body = (
            b'{"error": {"code": "unavailable", "message": "too many open connections; '
            b'retry shortly"}}'
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.limits.retry_after_s).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self._disarm()
            self.transport.write(_bare_answer(431, "Request Header Fields Too Large"))
            self.transport.close()

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _body_timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            # The application waits for the rest of the body: it now sees a disconnect,
            # and what it answers is dropped, since the 408 has been written here.
            cycle.scope[READ_TIMED_OUT] = True  # type: ignore[literal-required]
            cycle.response_started = cycle.response_complete = True
            cycle.disconnected = True
            cycle.message_event.set()
            self.transport.write(_bare_answer(408, "Request Timeout"))
        self.transport.close()


def _bare_answer(status: int, phrase: str) -> bytes:
    return f"HTTP/1.1 {status} {phrase}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
