"""Request dependencies: the services, and the calling principal checked for a scope."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request

from app.api.errors import Forbidden, ServiceUnavailable, Unauthorized
from app.auth import DEFAULT_PROJECT, SCOPES, Principal
from app.ingest.writer import is_unavailable
from app.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


_HOW = "send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"


def presented_key(request: Request) -> str:
    """The API key the request presents; raises Unauthorized saying what is missing or
    malformed (never echoing what could be a key)."""
    return key_from_headers(request.headers.get("authorization"), request.headers.get("x-api-key"))


def key_from_headers(authorization: str | None, x_api_key: str | None) -> str:
    """The key in an `Authorization: Bearer` or `x-api-key` header (HTTP headers and gRPC
    metadata alike); raises Unauthorized saying what is missing or malformed."""
    authorization = (authorization or "").strip()
    if "%20" in authorization[:10]:
        # OTEL_EXPORTER_OTLP_HEADERS values are percent-encoded; some SDKs send them as is.
        authorization = unquote(authorization).strip()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = (x_api_key or "").strip()
    if key:
        return key
    if not authorization:
        problem = f"missing API key: {_HOW}"
    elif scheme.lower() == "bearer":
        problem = f"the Authorization header has no key after 'Bearer': {_HOW}"
    elif not token:
        problem = (
            "the Authorization header needs the Bearer scheme before the key: "
            "send 'Authorization: Bearer <key>'"
        )
    else:
        # Name the scheme only when it reads as one (Basic, Token), never part of a key.
        named = f" {scheme!r}" if scheme.isalpha() and len(scheme) <= 20 else ""
        problem = f"the Authorization scheme{named} is not supported: {_HOW}"
    raise Unauthorized(problem, headers={"WWW-Authenticate": "Bearer"})


async def authorize(request: Request, scope: str) -> Principal:
    """The caller's principal if its key has `scope`; raises 401/403 otherwise."""
    return await authorize_headers(
        get_services(request),
        request.headers.get("authorization"),
        request.headers.get("x-api-key"),
        scope,
    )


async def authorize_headers(
    services: Services, authorization: str | None, x_api_key: str | None, scope: str
) -> Principal:
    """`authorize` for credentials read elsewhere (gRPC metadata): Unauthorized,
    Forbidden, or ServiceUnavailable while the key cannot be checked."""
    if not services.settings.auth_enabled:
        return Principal(services.default_project_id, DEFAULT_PROJECT, frozenset(SCOPES))
    key = key_from_headers(authorization, x_api_key)
    try:
        principal = await services.keys.lookup(key)
    except Exception as error:
        # An outage must answer 503 + Retry-After (clients retry), not 500.
        if not is_unavailable(error):
            raise
        raise ServiceUnavailable(
            "the database is unavailable, so the API key cannot be checked; retry later",
            headers={"Retry-After": str(services.settings.retry_after_s)},
        ) from None
    if principal is None:
        raise Unauthorized("invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    if not principal.allows(scope):
        raise Forbidden(
            f"this key lacks the '{scope}' scope (it has: {', '.join(sorted(principal.scopes))})"
        )
    return principal


async def read_principal(request: Request) -> Principal:
    services = get_services(request)
    if services.read_engine is services.engine and services.writer.breaker.is_open:
        # Ingest has found the database away: a read would only wait for it to time out.
        raise ServiceUnavailable(
            "the database is unavailable; retry later",
            headers={"Retry-After": str(services.settings.retry_after_s)},
        )
    return await authorize(request, "read")


async def admin_principal(request: Request) -> Principal:
    return await authorize(request, "admin")


ReadPrincipal = Annotated[Principal, Depends(read_principal)]
AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
