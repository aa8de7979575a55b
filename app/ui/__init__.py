"""The web UI served by the collector at / and /ui/ (docs/ui.md): Jinja2 pages over the
same query functions as the API, htmx and uPlot vendored under static/vendor."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.config import Settings
from app.ui import (
    routes_alerts,
    routes_auth,
    routes_errors,
    routes_logs,
    routes_overview,
    routes_slos,
    routes_traces,
)
from app.ui.render import HERE, STATIC_PATH
from app.ui.session import make_secret


def install_ui(app: FastAPI, settings: Settings) -> None:
    """Mount the UI's pages and static files (call only when TELEMETRY_UI_ENABLED)."""
    app.state.ui_secret = make_secret(settings.ui_secret)
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="ui-static")
    for module in (
        routes_auth,
        routes_overview,
        routes_traces,
        routes_logs,
        routes_errors,
        routes_alerts,
        routes_slos,
    ):
        app.include_router(module.router)
