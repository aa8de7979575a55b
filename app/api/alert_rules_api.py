"""Alert rules: GET/POST /api/v1/alert-rules, GET/PUT/PATCH/DELETE /api/v1/alert-rules/{id},
and POST /api/v1/alert-rules/preview (what a rule would do now, without storing it).

Read scope to view and preview, admin to change. Bodies are raw JSON validated by
`parse_rule`, so a bad one is a 400 naming the field; a duplicate name is a 409; a
rule of another project is a 404; a built-in rule cannot be deleted (409).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from app.api.body import config_body
from app.api.deps import AdminPrincipal, ReadPrincipal, ServicesDep
from app.api.errors import NotFound
from app.api.params import ObjectId
from app.query.rule_preview import preview_rule
from app.store import alert_rules as store

router = APIRouter(prefix="/api/v1", tags=["alerts"])


def _missing(rule_id: int) -> NotFound:
    return NotFound(f"no alert rule {rule_id} in this project")


@router.get("/alert-rules", summary="Alert rules of the project, built-in ones included")
async def list_alert_rules(principal: ReadPrincipal, services: ServicesDep) -> dict[str, Any]:
    return {"rules": await store.list_rules(services.read_engine, principal.project_id)}


@router.post("/alert-rules", status_code=201, summary="Create an alert rule")
async def create_alert_rule(
    request: Request, principal: AdminPrincipal, services: ServicesDep
) -> dict[str, Any]:
    body = await config_body(request)
    return await store.create_rule(services.engine, principal.project_id, body)


@router.post("/alert-rules/preview", summary="Evaluate a rule body now, without storing it")
async def preview_alert_rule(
    request: Request, principal: ReadPrincipal, services: ServicesDep
) -> dict[str, Any]:
    settings = services.settings
    return await preview_rule(
        services.read_engine,
        principal.project_id,
        await config_body(request),
        datetime.now(UTC),
        timeout_s=settings.seconds("alert_query_timeout"),
        external_url=settings.external_url.rstrip("/"),
    )


@router.get("/alert-rules/{rule_id}", summary="One alert rule")
async def read_alert_rule(
    rule_id: ObjectId, principal: ReadPrincipal, services: ServicesDep
) -> dict[str, Any]:
    rule = await store.get_rule(services.read_engine, principal.project_id, rule_id)
    if rule is None:
        raise _missing(rule_id)
    return rule


@router.put("/alert-rules/{rule_id}", summary="Replace an alert rule")
async def replace_alert_rule(
    rule_id: ObjectId, request: Request, principal: AdminPrincipal, services: ServicesDep
) -> dict[str, Any]:
    body = await config_body(request)
    rule = await store.replace_rule(services.engine, principal.project_id, rule_id, body)
    if rule is None:
        raise _missing(rule_id)
    return rule


@router.patch("/alert-rules/{rule_id}", summary="Change some fields (JSON merge patch)")
async def patch_alert_rule(
    rule_id: ObjectId, request: Request, principal: AdminPrincipal, services: ServicesDep
) -> dict[str, Any]:
    body = await config_body(request)
    rule = await store.patch_rule(services.engine, principal.project_id, rule_id, body)
    if rule is None:
        raise _missing(rule_id)
    return rule


@router.delete("/alert-rules/{rule_id}", status_code=204, summary="Delete an alert rule")
async def delete_alert_rule(
    rule_id: ObjectId, principal: AdminPrincipal, services: ServicesDep
) -> Response:
    if not await store.delete_rule(services.engine, principal.project_id, rule_id):
        raise _missing(rule_id)
    return Response(status_code=204)
