"""UI sign-in: a signed session cookie, the viewer it resolves to, CSRF and Origin checks.

The cookie never holds the API key. It holds the key's SHA-256 (what `api_keys` stores),
an expiry and a random nonce, signed with HMAC-SHA256 under the UI secret
(TELEMETRY_UI_SECRET, else a random one per process). Every request looks the digest up
again through the KeyStore, so a revoked key signs its sessions out within
TELEMETRY_KEY_CACHE_TTL, and the session sees only the key's project. The cookie is
HttpOnly and SameSite=Strict (Secure when the request came over https).

State-changing forms carry a CSRF token derived from the session's nonce (HMAC under the
same secret) in a hidden field, and a POST must also come from this host (Origin, else
Referer). With TELEMETRY_AUTH_ENABLED=false every visitor gets an anonymous session on the
default project with all scopes, as the API does, still with CSRF tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request

from app.auth import DEFAULT_PROJECT, SCOPES, Principal, hash_key
from app.services import Services

COOKIE = "tc_ui_session"
_VERSION = "v1"
_ANONYMOUS = "-"


class SignInRequired(Exception):
    """The request has no valid session: the page answers a redirect to the sign-in form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class UiForbidden(Exception):
    """A signed-in viewer may not do this (scope, CSRF or Origin): answered 403."""


@dataclass(frozen=True, slots=True)
class Session:
    digest_hex: str  # the key's SHA-256, or "-" for an anonymous session (auth disabled)
    expires: int
    nonce: str


@dataclass(frozen=True, slots=True)
class Viewer:
    principal: Principal
    csrf: str
    anonymous: bool

    @property
    def can_admin(self) -> bool:
        return self.principal.allows("admin")


def ui_secret(request: Request) -> bytes:
    return request.app.state.ui_secret


def make_secret(configured: str) -> bytes:
    return configured.encode() if configured else secrets.token_bytes(32)


def _mac(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def encode_session(secret: bytes, session: Session) -> str:
    body = f"{_VERSION}.{session.digest_hex}.{session.expires}.{session.nonce}"
    return f"{body}.{_mac(secret, body)}"


def decode_session(secret: bytes, value: str, now: float) -> Session | None:
    parts = value.split(".")
    if len(parts) != 5 or parts[0] != _VERSION:
        return None
    body, mac = ".".join(parts[:4]), parts[4]
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
    if not hmac.compare_digest(_mac(secret, body).encode(), mac.encode("utf-8", "surrogatepass")):
        return None
    try:
        expires = int(parts[2])
    except ValueError:
        return None
    if expires < now:
        return None
    return Session(parts[1], expires, parts[3])


def csrf_token(secret: bytes, session: Session) -> str:
    return _mac(secret, f"csrf.{session.nonce}")[:40]


def new_session(services: Services, key: str | None) -> Session:
    ttl = services.settings.seconds("ui_session_ttl")
    digest = hash_key(key).hex() if key else _ANONYMOUS
    return Session(digest, int(time.time() + ttl), secrets.token_urlsafe(16))


def set_session_cookie(request: Request, response: object, secret: bytes, session: Session) -> None:
    response.set_cookie(  # type: ignore[attr-defined]
        COOKIE,
        encode_session(secret, session),
        max_age=max(0, session.expires - int(time.time())),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def current_session(request: Request) -> Session | None:
    value = request.cookies.get(COOKIE)
    return decode_session(ui_secret(request), value, time.time()) if value else None


def _next_path(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{request.url.path}{query}"


async def viewer_of(request: Request, scope: str = "read") -> Viewer:
    """The signed-in viewer; raises SignInRequired without a valid session, UiForbidden when
    the key lacks `scope`."""
    services: Services = request.app.state.services
    session = current_session(request)
    if not services.settings.auth_enabled:
        session = session or getattr(request.state, "ui_new_session", None)
        if session is None:
            # An anonymous session is handed out with the page (see `ensure_anonymous`).
            session = new_session(services, None)
            request.state.ui_new_session = session
        principal = Principal(services.default_project_id, DEFAULT_PROJECT, frozenset(SCOPES))
        return Viewer(principal, csrf_token(ui_secret(request), session), anonymous=True)
    if session is None or session.digest_hex == _ANONYMOUS:
        raise SignInRequired(_next_path(request))
    try:
        digest = bytes.fromhex(session.digest_hex)
    except ValueError:
        raise SignInRequired(_next_path(request)) from None
    principal = await services.keys.lookup_digest(digest)
    if principal is None or not principal.allows("read"):
        raise SignInRequired(_next_path(request))
    if not principal.allows(scope):
        raise UiForbidden(
            f"this key lacks the '{scope}' scope (it has: {', '.join(sorted(principal.scopes))})"
        )
    return Viewer(principal, csrf_token(ui_secret(request), session), anonymous=False)


def same_origin(request: Request) -> bool:
    """The POST came from a page of this host: Origin (else Referer) names the Host."""
    host = request.headers.get("host", "")
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    if not source or source == "null" or not host:
        return False
    return urlsplit(source).netloc.lower() == host.lower()


async def checked_form(request: Request, scope: str = "admin") -> tuple[Viewer, dict[str, str]]:
    """A state-changing POST: the viewer (with `scope`) and its form, after the Origin and
    CSRF checks (UiForbidden otherwise)."""
    viewer = await viewer_of(request, scope)
    if not same_origin(request):
        raise UiForbidden("this form must be sent from a page of this collector (Origin check)")
    values = await read_form(request)
    sent = values.get("csrf", "")
    if getattr(request.state, "ui_new_session", None) is not None or not hmac.compare_digest(
        sent.encode("utf-8", "surrogatepass"), viewer.csrf.encode()
    ):
        raise UiForbidden("the form's CSRF token is missing or stale; reload the page")
    return viewer, values


MAX_FORM_BYTES = 64 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (every UI form is one), first value of
    each field; a larger or other body is refused (UiForbidden)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise UiForbidden("send the form as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise UiForbidden(f"the form is larger than {MAX_FORM_BYTES} bytes")
    values: dict[str, str] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        values.setdefault(key, value.replace("\x00", ""))
    return values


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of this site only (never `//host` or a URL)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return "/"  # browsers drop tabs and newlines: "/\t/host" would become "//host"
    return value
