"""One error type per HTTP meaning, and the one handler that turns them into JSON answers."""

from __future__ import annotations

import logging

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.ingest.writer import is_unavailable
from app.query.cursor import InvalidCursor

log = logging.getLogger(__name__)


class ApiError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class TooManyRequests(ApiError):
    status = 429
    code = "too_many_requests"


class ServiceUnavailable(ApiError):
    status = 503
    code = "unavailable"


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(error.code, error.message), status_code=error.status, headers=error.headers
        )

    @app.exception_handler(InvalidCursor)
    async def _cursor(_: Request, error: InvalidCursor) -> JSONResponse:
        # Raised by the read side for a cursor it did not issue; the message names it.
        return JSONResponse(error_body(BadRequest.code, str(error)), status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            problems.append(f"{where}: {item.get('msg')}")
        return JSONResponse(
            error_body("invalid_request", "; ".join(problems) or "invalid request"),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(error.detail)),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )

    async def _database(request: Request, error: Exception) -> JSONResponse:
        # A query that meets a database outage is retryable: 503 + Retry-After, not 500.
        if is_unavailable(error):
            retry_after = request.app.state.settings.retry_after_s
            return JSONResponse(
                error_body("unavailable", "the database is unavailable; retry later"),
                status_code=503,
                headers={"Retry-After": str(retry_after)},
            )
        log.error("database error", exc_info=error)
        return JSONResponse(error_body("internal", "internal error"), status_code=500)

    for database_error in (
        SQLAlchemyError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        OSError,
    ):
        app.add_exception_handler(database_error, _database)
