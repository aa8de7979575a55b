"""The last word on a request that raised: a client that left is not a server error, and a
bug answers 500 without closing the connection.

Without this, an exception escaping the application reached uvicorn, which logged it with
its traceback and closed the connection, even a keep-alive one with nothing wrong with it;
and a client that disconnected mid-body was logged and counted as a 500 (a slow-client run
wrote 10,987 tracebacks). Mounted inside `RequestContext`, so what it answers is what the
request log line and the duration histogram record: 499 (client closed the request, as
nginx writes it) or 408 (its body timed out, see `app/connections.py`), never 5xx.
"""

from __future__ import annotations

import logging

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.body import ClientGone
from app.api.errors import error_body
from app.connections import READ_TIMED_OUT

log = logging.getLogger(__name__)
CLIENT_CLOSED_REQUEST = 499


class Failsafe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except (ClientDisconnect, ClientGone):
            if not started:
                # Nobody reads this answer (uvicorn drops it); it tells the log what happened.
                status = 408 if scope.get(READ_TIMED_OUT) else CLIENT_CLOSED_REQUEST
                await _answer(send, status, b"")
        except Exception:
            if started:
                raise  # half an answer went out: only closing the connection can end it
            log.exception("unhandled error", extra={"path": scope.get("path")})
            await _answer(send, 500, orjson.dumps(error_body("internal", "internal error")))


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
