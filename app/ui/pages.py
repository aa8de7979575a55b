"""What every UI page shares: the guard that turns problems into pages, and filter parsing.

Pages read their filters from the query string themselves (so a bad value is a 400 page
naming it, never a JSON error or a 500), and every filter stays in the URL: a page can be
shared and reloaded.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import QueryParams

from app.api.dashboard import parse_window
from app.api.errors import BadRequest, NotFound
from app.api.params import time_range
from app.query.cursor import InvalidCursor
from app.services import Services
from app.ui.render import render
from app.ui.session import SignInRequired, UiForbidden, current_session, viewer_of

P = ParamSpec("P")
WINDOWS = ("15m", "1h", "6h", "24h", "7d")


def services_of(request: Request) -> Services:
    return request.app.state.services


def guarded(
    handler: Callable[P, Awaitable[Response]],
) -> Callable[P, Awaitable[Response]]:
    """Sign-in redirects, 403/400/404 pages for the errors a handler raises."""

    @functools.wraps(handler)
    async def page(*args: P.args, **kwargs: P.kwargs) -> Response:
        request = kwargs.get("request")
        assert isinstance(request, Request), "UI handlers take `request` by keyword"
        try:
            return await handler(*args, **kwargs)
        except SignInRequired as error:
            target = f"/ui/login?next={quote(error.next_path)}"
            if request.headers.get("hx-request"):
                # A fragment's session ended: the whole page goes to sign-in, not the fragment.
                return Response(status_code=204, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
        except UiForbidden as error:
            return await problem(request, 403, "Not allowed", str(error))
        except (BadRequest, InvalidCursor) as error:
            return await problem(request, 400, "Bad request", str(error))
        except NotFound as error:
            return await problem(request, 404, "Not found", str(error))

    return page


async def problem(request: Request, status: int, title: str, message: str) -> Response:
    viewer = None
    if current_session(request) is not None or not services_of(request).settings.auth_enabled:
        try:
            viewer = await viewer_of(request)
        except (SignInRequired, UiForbidden):
            viewer = None
    return render(
        request,
        "problem.html",
        viewer,
        title=title,
        status_code=status,
        message=message,
        status=status,
    )


def text(query: QueryParams, name: str) -> str | None:
    value = (query.get(name) or "").replace("\x00", "").strip()
    return value or None


def window_seconds(value: str | None, default: str = "1h") -> tuple[str, float]:
    window = value or default
    return window, parse_window(window)


def time_window(query: QueryParams, default: str = "1h") -> tuple[datetime, datetime, str]:
    """`start..end` when either is given (as the API reads them), else the last `window`."""
    start, end = text(query, "start"), text(query, "end")
    window, seconds = window_seconds(text(query, "window"), default)
    if start or end:
        first, last = time_range(start, end, default_span=timedelta(seconds=seconds))
        return first, last, window
    now = datetime.now(UTC)
    return now - timedelta(seconds=seconds), now, window


def bounded_int(query: QueryParams, name: str, default: int, low: int, high: int) -> int:
    raw = text(query, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} {raw!r:.40} is not a whole number") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def attribute_pairs(query: QueryParams) -> tuple[tuple[str, str], ...]:
    """`attrs` as `key=value` lines (the search form's text area), plus any `attr.<key>`."""
    found: list[tuple[str, str]] = []
    for line in (query.get("attrs") or "").replace("\x00", "").splitlines():
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise BadRequest(f"attributes: {line!r:.80} is not key=value, e.g. gen_ai.tool=search")
        found.append((key.strip(), value.strip()))
    for name, value in query.multi_items():
        if name.startswith("attr.") and len(name) > 5:
            found.append((name[5:].replace("\x00", ""), value.replace("\x00", "")))
    if len(found) > 20:
        raise BadRequest(f"at most 20 attribute filters, got {len(found)}")
    return tuple(found)


def chart(x: list[str], series: list[dict[str, Any]], unit: str = "") -> dict[str, Any]:
    """The data of one uPlot chart (app/ui/static/ui.js draws it): x as unix seconds."""
    return {
        "x": [datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() for t in x],
        "series": series,
        "unit": unit,
    }
