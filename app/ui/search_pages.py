"""A search page (traces, logs): one search and the service picker, read together, then the
whole page, or only its rows when htmx asks for the next page."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncEngine

from app.ui.catalog import service_suggestions
from app.ui.pages import WINDOWS, services_of
from app.ui.render import render
from app.ui.session import Viewer

Search = Callable[[AsyncEngine, int], Awaitable[dict[str, Any]]]


async def search_page(
    request: Request,
    viewer: Viewer,
    *,
    section: str,
    title: str,
    search: Search,
    **context: Any,
) -> Response:
    """`search(engine, project)` answers `{section: items, "next_cursor": ...}`; the page is
    `<section>.html`, its rows `<section>_rows.html`."""
    engine = services_of(request).read_engine
    project = viewer.principal.project_id
    found, names = await asyncio.gather(
        search(engine, project), service_suggestions(engine, project)
    )
    rows_only = bool(request.headers.get("hx-request"))
    return render(
        request,
        f"{section}_rows.html" if rows_only else f"{section}.html",
        viewer,
        section=section,
        title=title,
        next_cursor=found["next_cursor"],
        windows=WINDOWS,
        services=names,
        **{section: found[section]},
        **context,
    )
