"""The overview: RED charts, LLM tokens and cost per model, the LLM dashboard tables."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.query import dashboard
from app.query.services import rollup_service_names
from app.ui.pages import WINDOWS, chart, guarded, services_of, text, window_seconds
from app.ui.render import render
from app.ui.session import viewer_of

router = APIRouter(include_in_schema=False)


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
    now = datetime.now(UTC)
    summary, llm, per_model, names = await asyncio.gather(
        dashboard.overview(engine, project, window_s=window_s, service=service, now=now),
        dashboard.llm_usage(engine, project, window_s=window_s, service=service, now=now),
        dashboard.llm_timeseries(engine, project, window_s=window_s, service=service, now=now),
        rollup_service_names(engine, project, start=now - timedelta(seconds=window_s), end=now),
    )
    series = summary["timeseries"]
    x = series["timestamps"]
    error_rate = [
        (errors / requests if requests else None)
        for errors, requests in zip(series["errors"], series["requests"], strict=True)
    ]
    models = per_model["models"]
    charts = {
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
        "tokens": chart(
            per_model["timestamps"],
            [
                {
                    "label": model["model"] or "(unknown)",
                    "values": [
                        a + b
                        for a, b in zip(model["input_tokens"], model["output_tokens"], strict=True)
                    ],
                }
                for model in models
            ],
        ),
        "cost": chart(
            per_model["timestamps"],
            [
                {"label": model["model"] or "(unknown)", "values": model["cost_usd"]}
                for model in models
            ],
            unit="USD",
        ),
    }
    return render(
        request,
        "overview.html",
        viewer,
        section="overview",
        title="Overview",
        summary=summary,
        llm=llm,
        charts=charts,
        window=window,
        windows=WINDOWS,
        service=service or "",
        services=names,
    )
