"""Jinja2 rendering of UI pages: the environment, its filters, and the page response."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.ui.session import Viewer, set_session_cookie, ui_secret

HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
STATIC_PATH = "/ui/static"
ASSET_VERSIONS = {"htmx": "2.0.11", "uplot": "1.6.32"}
NAV = (
    ("overview", "/ui/", "Overview"),
    ("traces", "/ui/traces", "Traces"),
    ("logs", "/ui/logs", "Logs"),
    ("errors", "/ui/errors", "Errors"),
    ("alerts", "/ui/alerts", "Alerts"),
    ("slos", "/ui/slos", "SLOs"),
)


def duration_ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 10:
        return f"{value:.0f} ms"
    return f"{value:.2f} ms"


def short_time(value: str | None) -> str:
    """An ISO time as `YYYY-MM-DD HH:MM:SS` (UTC)."""
    if not value:
        return "–"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f}%"


def number(value: float | int | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"
    return f"{int(value):,}"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def web_link(value: Any) -> str | None:
    """An http(s) URL to show as a link (a runbook, after templating); anything else, such as
    a `javascript:` URL, is not linked."""
    if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
        return value
    return None


def url_with(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    params += [(k, str(v)) for k, v in changes.items() if v is not None and v != ""]
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


for name, function in {
    "ms": duration_ms,
    "when": short_time,
    "percent": percent,
    "number": number,
    "pretty": pretty,
    "web_link": web_link,
}.items():
    TEMPLATES.env.filters[name] = function


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    *,
    section: str = "",
    title: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "viewer": viewer,
            "section": section,
            "title": title,
            "nav": NAV,
            "static": STATIC_PATH,
            "assets": ASSET_VERSIONS,
            "url_with": lambda **changes: url_with(request, **changes),
            "query": request.query_params,
            **context,
        },
        status_code=status_code,
    )
    fresh = getattr(request.state, "ui_new_session", None)
    if fresh is not None:
        set_session_cookie(request, response, ui_secret(request), fresh)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'; form-action 'self'"
    )
    return response
