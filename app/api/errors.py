"""One error type per HTTP meaning, and the one handler that turns them into JSON answers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg

# asyncpg's client-side "invalid input for query argument" error; the public name
# asyncpg.exceptions.DataError is PostgreSQL's SQLSTATE 22000, a different class.
from asyncpg.exceptions._base import DataError as ArgumentError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import store
from app.domain import jaeger_model
from app.domain.alert_rules import InvalidRule
from app.domain.silences import InvalidSilence
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


_PARAMETER_LOCATIONS = ("query", "path", "header", "cookie")


def validation_problems(errors: Sequence[Any]) -> list[str]:
    """FastAPI's validation errors as messages: "limit '1000' is not accepted: input should
    be less than or equal to 100" for a parameter, "status: ..." for a body field."""
    problems: list[str] = []
    for item in errors:
        location = tuple(item.get("loc", ()))
        where = ".".join(str(part) for part in location[1:])
        message = str(item.get("msg", "invalid"))
        if location[:1] == ("body",) and item.get("type") == "json_invalid":
            problems.append(f"body is not valid JSON: {item.get('ctx', {}).get('error', '')}")
        elif location[:1] and location[0] in _PARAMETER_LOCATIONS:
            given = item.get("input")
            shown = f" {given!r:.60}" if isinstance(given, str) else ""
            problems.append(f"{where}{shown} is not accepted: {message[:1].lower()}{message[1:]}")
        else:
            problems.append(f"{where or 'body'}: {message}")
    return problems


# SQLSTATE classes of errors that the values in a statement cause: 22 data exception
# (NUL in text, a number or time out of a column's range, an invalid regex), 54 program
# limit exceeded (a value too large for the operation).
_INPUT_SQLSTATE_PREFIXES = ("22", "54")


def refused_input(error: BaseException | None) -> str | None:
    """The database's reason when `error` was caused by a value in the statement, else None.

    asyncpg's DataError is raised before sending, for an argument its codec cannot encode
    (an integer past 64 bits); SQLSTATE classes 22 and 54 come from PostgreSQL.
    """
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, ArgumentError):
            return str(error)[:300]
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_INPUT_SQLSTATE_PREFIXES):
            # SQLAlchemy's wrapper prefixes the class name; asyncpg's own error has the text.
            original = (
                error.__cause__ if isinstance(error.__cause__, asyncpg.PostgresError) else error
            )
            return str(getattr(original, "message", None) or original)[:300]
        error = getattr(error, "orig", None) or error.__cause__
        seen += 1
    return None


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}
# The Jaeger query API (app/api/jaeger_api.py) answers failures in Jaeger's own envelope.
JAEGER_ERROR_SCHEMA = {
    "type": "object",
    "required": ["data", "errors"],
    "properties": {
        "data": {"type": "null"},
        "total": {"type": "integer"},
        "limit": {"type": "integer"},
        "offset": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code", "msg"],
                "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}},
            },
        },
    },
}


def in_jaeger_api(path: str) -> bool:
    """Paths under /api/ outside the native /api/v1/ belong to the Jaeger query API."""
    return path.startswith("/api/") and not path.startswith("/api/v1/")


def describe_bad_requests(schema: dict[str, Any]) -> None:
    """Document what the validation handler answers: FastAPI lists a 422 with its own
    error shape on every operation that validates input; the collector answers 400 with
    `{"error": {"code", "message"}}`, so that is what the document says."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for path, item in schema.get("paths", {}).items():
        jaeger = in_jaeger_api(path)
        for operation in item.values():
            if isinstance(operation, dict):
                _describe_400(schemas, operation.get("responses", {}), jaeger=jaeger)
    for name in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(name, None)


def _describe_400(schemas: dict[str, Any], responses: dict[str, Any], *, jaeger: bool) -> None:
    if responses.pop("422", None) is not None or jaeger:
        shape = "JaegerError" if jaeger else "Error"
        schemas.setdefault(shape, JAEGER_ERROR_SCHEMA if jaeger else ERROR_SCHEMA)
        responses["400"] = {
            "description": "Bad request: the message names each parameter or field",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{shape}"}}},
        }


def install_error_handlers(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            describe_bad_requests(generate())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(error.code, error.message), status_code=error.status, headers=error.headers
        )

    @app.exception_handler(InvalidCursor)
    async def _cursor(_: Request, error: InvalidCursor) -> JSONResponse:
        # Raised by the read side for a cursor it did not issue; the message names it.
        return JSONResponse(error_body(BadRequest.code, str(error)), status_code=400)

    # Configuration bodies are validated by the domain parsers and the store; their
    # messages name the field ("query.filters.servce: not a filter of spans; use: ...").
    async def _bad_body(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse(error_body(BadRequest.code, str(error)), status_code=400)

    for invalid in (InvalidRule, InvalidSilence, store.InvalidReference):
        app.add_exception_handler(invalid, _bad_body)

    @app.exception_handler(store.Conflict)
    async def _conflict(_: Request, error: store.Conflict) -> JSONResponse:
        return JSONResponse(error_body(Conflict.code, str(error)), status_code=409)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own checks (parameters, JSON bodies) answer like every other bad input:
        # 400 bad_request, with a message that names each parameter or field.
        message = "; ".join(validation_problems(error.errors())) or "invalid request"
        if in_jaeger_api(request.url.path):
            return JSONResponse(jaeger_model.error_envelope(400, message), status_code=400)
        return JSONResponse(error_body(BadRequest.code, message), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        status = error.status_code
        headers = getattr(error, "headers", None)
        if in_jaeger_api(request.url.path):
            # No route matched (`/api/services//operations`): still Jaeger's envelope.
            body = jaeger_model.error_envelope(status, str(error.detail))
            return JSONResponse(body, status_code=status, headers=headers)
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        body = error_body(code, str(error.detail))
        return JSONResponse(body, status_code=status, headers=headers)

    async def _database(request: Request, error: Exception) -> JSONResponse:
        # Input that reached the database and was refused there is the caller's mistake:
        # 400, checked first (asyncpg's DataError is also an InterfaceError, an "outage").
        refused = refused_input(error)
        if refused is not None:
            log.warning("input refused by the database", extra={"error": refused})
            return JSONResponse(
                error_body(BadRequest.code, f"a value in this request is not accepted: {refused}"),
                status_code=400,
            )
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
