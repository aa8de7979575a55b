"""Notification channels: GET/POST /api/v1/channels, GET/PUT/DELETE /api/v1/channels/{id},
POST /api/v1/channels/{id}/test. Read scope to view, admin to change or test.

Reads show the URL as `scheme://host/***` and header values as `***`; a PUT that sends
those masked values back keeps the stored ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from app.api.body import config_body
from app.api.deps import AdminPrincipal, ReadPrincipal, ServicesDep
from app.api.errors import BadRequest, Conflict, NotFound
from app.api.params import ObjectId
from app.domain.channels import InvalidChannel, masked, parse_channel, unmask
from app.domain.notify_groups import group_key
from app.domain.notify_payloads import Envelope, build_payload, probe_alert
from app.domain.times import iso
from app.store import channels as store
from app.workers.delivery import probe
from app.workers.dispatch import alertmanager_valid_for_s

router = APIRouter(prefix="/api/v1", tags=["alerting"])


def _shown(row: store.ChannelRow) -> dict[str, Any]:
    return {
        "id": row.id,
        **masked(row.spec),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


async def _found(services: Any, project_id: int, channel_id: int) -> store.ChannelRow:
    row = await store.get_channel(services.engine, project_id, channel_id)
    if row is None:
        raise NotFound(f"no channel {channel_id} in this project")
    return row


@router.get("/channels", summary="The project's notification channels (secrets masked)")
async def list_channels(principal: ReadPrincipal, services: ServicesDep) -> dict[str, Any]:
    rows = await store.list_channels(services.engine, principal.project_id)
    return {"channels": [_shown(row) for row in rows]}


@router.get("/channels/{channel_id}", summary="One notification channel (secrets masked)")
async def read_channel(
    channel_id: ObjectId, principal: ReadPrincipal, services: ServicesDep
) -> dict[str, Any]:
    return _shown(await _found(services, principal.project_id, channel_id))


@router.post("/channels", status_code=201, summary="Create a notification channel")
async def create_channel(
    request: Request, principal: AdminPrincipal, services: ServicesDep
) -> dict[str, Any]:
    try:
        spec = parse_channel(await config_body(request))
        row = await store.create_channel(services.engine, principal.project_id, spec)
    except InvalidChannel as error:
        raise BadRequest(str(error)) from None
    except store.DuplicateName as error:
        raise Conflict(str(error)) from None
    return _shown(row)


@router.put("/channels/{channel_id}", summary="Replace a channel (masked secrets are kept)")
async def replace_channel(
    channel_id: ObjectId, request: Request, principal: AdminPrincipal, services: ServicesDep
) -> dict[str, Any]:
    stored = await _found(services, principal.project_id, channel_id)
    try:
        spec = parse_channel(unmask(await config_body(request), stored.spec))
        row = await store.update_channel(services.engine, principal.project_id, channel_id, spec)
    except InvalidChannel as error:
        raise BadRequest(str(error)) from None
    except store.DuplicateName as error:
        raise Conflict(str(error)) from None
    if row is None:
        raise NotFound(f"no channel {channel_id} in this project")
    return _shown(row)


@router.delete("/channels/{channel_id}", status_code=204, summary="Delete an unused channel")
async def delete_channel(
    channel_id: ObjectId, principal: AdminPrincipal, services: ServicesDep
) -> Response:
    try:
        deleted = await store.delete_channel(services.engine, principal.project_id, channel_id)
    except store.ChannelInUse as error:
        raise Conflict(str(error)) from None
    if not deleted:
        raise NotFound(f"no channel {channel_id} in this project")
    return Response(status_code=204)


@router.post("/channels/{channel_id}/test", summary="Send a test notification now")
async def test_channel(
    channel_id: ObjectId, principal: AdminPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """Sends one notification with a `TelemetryCollectorTest` alert (to an Alertmanager,
    already resolved, so nobody is paged) and reports what the receiver answered."""
    row = await _found(services, principal.project_id, channel_id)
    spec = parse_channel(row.spec)
    settings = services.settings
    now = datetime.now(UTC)
    alert = probe_alert(spec.name, spec.type, now)
    labels = {"alertname": alert.labels["alertname"]}
    envelope = Envelope(spec.name, group_key(labels), labels, settings.external_url)
    payload = build_payload(
        spec.type, envelope, [alert], now=now, valid_for_s=alertmanager_valid_for_s(settings)
    )
    attempt = await probe(spec, payload, settings.seconds("notification_timeout"))
    return {
        "delivered": attempt.ok,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": round(attempt.duration_s * 1000, 1),
    }
