"""The overview: RED totals and charts first; the LLM section (tokens and cost per model,
the LLM dashboard's tables) follows as a fragment htmx loads into the page, so the page
shows as soon as the cheaper request figures are read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.query import dashboard
from app.ui.catalog import service_suggestions
from app.ui.pages import WINDOWS, chart, guarded, services_of, text, window_seconds
from app.ui.render import render
from app.ui.session import viewer_of

router = APIRouter(include_in_schema=False)


def _red_charts(series: dict[str, Any]) -> dict[str, Any]:
    x = series["timestamps"]
    error_rate = [
        (errors / requests if requests else None)
        for errors, requests in zip(series["errors"], series["requests"], strict=True)
    ]
    return {
        "requests": chart(x, [{"label": "requests", "values": series["requests"]}]),
        "error_rate": chart(x, [{"label": "error rate", "values": error_rate}], unit="ratio"),
        "latency": chart(
            x,
            [
                {"label": "p50", "values": series["p50_ms"]},
                {"label": "p95", "values": series["p95_ms"]},
            ],
            unit="ms",
        ),
    }


def _model_charts(per_model: dict[str, Any]) -> dict[str, Any]:
    x, models = per_model["timestamps"], per_model["models"]
    tokens = [
        {
            "label": model["model"] or "(unknown)",
            "values": [
                a + b for a, b in zip(model["input_tokens"], model["output_tokens"], strict=True)
            ],
        }
        for model in models
    ]
    cost = [
        {"label": model["model"] or "(unknown)", "values": model["cost_usd"]} for model in models
    ]
    return {"tokens": chart(x, tokens), "cost": chart(x, cost, unit="USD")}


@router.get("/")
@router.get("/ui")
@router.get("/ui/")
@guarded
async def overview(request: Request) -> Response:
    viewer = await viewer_of(request)
    query = request.query_params
    window, window_s = window_seconds(text(query, "window"))
    service = text(query, "service")
    engine = services_of(request).read_engine
    project = viewer.principal.project_id
    summary, names = await asyncio.gather(
        dashboard.overview(engine, project, window_s=window_s, service=service),
        service_suggestions(engine, project),
    )
    return render(
        request,
        "overview.html",
        viewer,
        section="overview",
        title="Overview",
        summary=summary,
        charts=_red_charts(summary["timeseries"]),
        window=window,
        windows=WINDOWS,
        service=service or "",
        services=names,
    )


@router.get("/ui/overview/llm")
@guarded
async def llm_section(request: Request) -> Response:
    """Tokens and cost per model over time and the per-model and per-tool tables: a
    fragment for htmx, or a page of its own when opened directly."""
    viewer = await viewer_of(request)
    query = request.query_params
    window, window_s = window_seconds(text(query, "window"))
    service = text(query, "service")
    engine = services_of(request).read_engine
    project = viewer.principal.project_id
    now = datetime.now(UTC)
    llm, per_model = await asyncio.gather(
        dashboard.llm_usage(engine, project, window_s=window_s, service=service, now=now),
        dashboard.llm_timeseries(engine, project, window_s=window_s, service=service, now=now),
    )
    fragment = bool(request.headers.get("hx-request"))
    return render(
        request,
        "overview_llm.html" if fragment else "overview_llm_page.html",
        viewer,
        section="overview",
        title="LLM usage",
        llm=llm,
        charts=_model_charts(per_model),
        window=window,
        service=service or "",
    )
