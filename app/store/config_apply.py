"""Alerting as code against the database: what a project has, applying a file, exporting.

`current(engine, project_id)` reads the project's channels, rules, silences and SLOs in
the file's form (app/domain/config_file.py); `apply` carries out `plan`'s changes through
the same store functions the API uses, so a file can do exactly what the API can and is
refused for the same reasons; `export` writes the file that `apply` would turn the
project into (built-in rules as `builtin: true` with their editable fields, SLO-owned
rules not at all: they follow their SLO).

Secrets: `export` masks channel URLs and header values unless asked to show them, so an
export can be committed; applying a masked value keeps the stored secret (as a PUT with
the masked value does), and `${VAR}` in the file supplies it from the environment.

Everything is validated before the first change (`load` and `plan`, and every channel a
rule or SLO names must be in the file or already in the project); a change the database
refuses afterwards (a name another writer took meanwhile) stops the run with the changes
made so far listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import silences
from app.domain.channels import masked, parse_channel, unmask
from app.domain.config_file import (
    SECTIONS,
    Change,
    ConfigFile,
    ConfigFileError,
    Current,
    Item,
    plan,
    silence_document,
)
from app.domain.silences import parse_silence, silence_state
from app.domain.slos import parse_slo
from app.store import alert_rules as rule_store
from app.store import channels as channel_store
from app.store import silences as silence_store
from app.store import slos as slo_store


@dataclass(slots=True)
class Project:
    """What a project has, with the ids each name stands for."""

    current: Current
    ids: dict[str, dict[str, int]]
    stored_channels: dict[str, dict[str, Any]]


async def current(engine: AsyncEngine, project_id: int, now: datetime) -> Project:
    ids: dict[str, dict[str, int]] = {section: {} for section in SECTIONS}
    documents: dict[str, dict[str, dict[str, Any]]] = {section: {} for section in SECTIONS}
    refs: dict[str, dict[str, tuple[str, ...]]] = {section: {} for section in SECTIONS}

    stored_channels = {}
    for channel in await channel_store.list_channels(engine, project_id):
        ids["channels"][channel.name] = channel.id
        documents["channels"][channel.name] = parse_channel(channel.spec).document()
        stored_channels[channel.name] = channel.spec
    channel_name = {channel_id: name for name, channel_id in ids["channels"].items()}

    def names_of(channel_ids: list[int]) -> tuple[str, ...]:
        return tuple(channel_name[i] for i in channel_ids if i in channel_name)

    builtin = set()
    for rule in await rule_store.list_rules(engine, project_id):
        if rule["slo_id"] is not None:
            continue  # follows its SLO
        name = rule["name"]
        ids["rules"][name] = rule["id"]
        refs["rules"][name] = names_of(rule["channels"])
        document = {key: rule[key] for key in rule if key in _RULE_FIELDS}
        document.pop("channels", None)
        documents["rules"][name] = document
        if rule["builtin"]:
            builtin.add(name)

    async with engine.connect() as connection:
        for slo in await slo_store.list_slos(connection, project_id):
            document = slo.spec.document()
            refs["slos"][slo.spec.name] = names_of(document["alerting"].pop("channels", []))
            documents["slos"][slo.spec.name] = document
            ids["slos"][slo.spec.name] = slo.id
        rows = (
            await connection.execute(
                select(silences).where(
                    silences.c.project_id == project_id, silences.c.name.is_not(None)
                )
            )
        ).all()
    expired = set()
    for row in rows:
        ids["silences"][row.name] = row.id
        documents["silences"][row.name] = _silence_document(row)
        if silence_state(row.starts_at, row.ends_at, now) == "expired":
            expired.add(row.name)
    return Project(
        Current(documents, refs, frozenset(builtin), frozenset(expired)), ids, stored_channels
    )


_RULE_FIELDS = (
    "name",
    "signal",
    "query",
    "condition",
    "for",
    "keep_firing_for",
    "severity",
    "labels",
    "annotations",
    "channels",
    "enabled",
)


def _silence_document(row: Any) -> dict[str, Any]:
    spec = parse_silence(
        {
            "name": row.name,
            "matchers": row.matchers,
            "starts_at": row.starts_at,
            "ends_at": row.ends_at,
            "comment": row.comment,
            "created_by": row.created_by,
        },
        now=row.starts_at,
    )
    return silence_document(spec)


def _unmasked(config: ConfigFile, project: Project) -> None:
    """Masked secrets in the file (an export's `***`) stand for the stored ones."""
    for index, item in enumerate(config.items["channels"]):
        if not item.masked:
            continue
        stored = project.stored_channels.get(item.name)
        if stored is None:
            raise ConfigFileError(
                f"{config.source}: channels[{item.index}] {item.name!r}: url/headers are masked "
                "(***) and the project has no channel of this name to take them from; write "
                "them, e.g. from the environment: url: ${ONCALL_WEBHOOK_URL}"
            )
        try:
            document = parse_channel(unmask(item.document, stored)).document()
        except ValueError as error:
            raise ConfigFileError(
                f"{config.source}: channels[{item.index}] {item.name!r}: {error}"
            ) from None
        config.items["channels"][index] = Item(
            item.section, item.index, item.name, document, item.channel_names
        )


def _check_references(config: ConfigFile, project: Project, *, prune: bool) -> None:
    available = config.names("channels")
    if not prune:
        available |= set(project.ids["channels"])
    for section in ("rules", "slos"):
        for item in config.items[section]:
            for name in item.channel_names:
                if name not in available:
                    where = "alerting.channels" if section == "slos" else "channels"
                    raise ConfigFileError(
                        f"{config.source}: {section}[{item.index}] {item.name!r}: {where}: no "
                        f"channel named {name!r} in the file"
                        + ("" if prune else " or in the project")
                    )


async def apply(
    engine: AsyncEngine,
    project_id: int,
    config: ConfigFile,
    *,
    prune: bool,
    dry_run: bool,
    now: datetime,
) -> list[Change]:
    """Make the project match the file; returns every change (made, or planned when
    `dry_run`)."""
    project = await current(engine, project_id, now)
    _unmasked(config, project)
    _check_references(config, project, prune=prune)
    changes = plan(config, project.current, prune=prune)
    if dry_run:
        return changes
    for change in changes:
        if change.action in ("unchanged", "skip"):
            continue
        try:
            await _carry_out(engine, project_id, project, change, now)
        except ConfigFileError:
            raise
        except ValueError as error:  # the store's own refusals (InvalidRule, Conflict, ...)
            raise ConfigFileError(
                f"{config.source}: {change.section} {change.name!r}: {error}"
            ) from None
    return changes


async def _carry_out(
    engine: AsyncEngine, project_id: int, project: Project, change: Change, now: datetime
) -> None:
    section, name, item = change.section, change.name, change.item
    ids = project.ids
    if change.action == "delete":
        target = ids[section][name]
        if section == "channels":
            await channel_store.delete_channel(engine, project_id, target)
        elif section == "rules":
            await rule_store.delete_rule(engine, project_id, target)
        elif section == "slos":
            await slo_store.delete_slo(engine, project_id, target, now)
        else:
            await silence_store.expire_silence(engine, project_id, target, now)
        return
    assert item is not None
    channel_ids = [ids["channels"][channel] for channel in item.channel_names]
    if section == "channels":
        spec = parse_channel(item.document)
        if change.action == "create":
            ids["channels"][name] = (
                await channel_store.create_channel(engine, project_id, spec)
            ).id
        else:
            await channel_store.update_channel(engine, project_id, ids["channels"][name], spec)
    elif section == "rules":
        body = {**item.document, "channels": channel_ids}
        if item.builtin:
            patch = {key: value for key, value in body.items() if key != "name"}
            await rule_store.patch_rule(engine, project_id, ids["rules"][name], patch)
        elif change.action == "create":
            await rule_store.create_rule(engine, project_id, body)
        else:
            await rule_store.replace_rule(engine, project_id, ids["rules"][name], body)
    elif section == "slos":
        document = {**item.document}
        document["alerting"] = {**document.get("alerting", {}), "channels": channel_ids}
        spec = parse_slo(document)
        if change.action == "create":
            await slo_store.create_slo(engine, project_id, spec)
        else:
            await slo_store.update_slo(engine, project_id, ids["slos"][name], spec, now)
    else:
        await _put_silence(engine, project_id, project, item, now)


async def _put_silence(
    engine: AsyncEngine, project_id: int, project: Project, item: Item, now: datetime
) -> None:
    body = {key: value for key, value in item.document.items() if value is not None}
    existing = project.ids["silences"].get(item.name)
    if existing is None:
        await silence_store.create_silence(engine, project_id, body, now)
        return
    # The name stays with its silence (also an ended one): changed in place, as an edit.
    starts = item.document.get("starts_at") or project.current.documents["silences"][item.name].get(
        "starts_at"
    )
    if (
        starts is None
        or silence_state(
            datetime.fromisoformat(starts), datetime.fromisoformat(body["ends_at"]), now
        )
        == "expired"
    ):
        starts = now.isoformat()
    spec = parse_silence({**body, "starts_at": starts}, now=now)
    async with engine.begin() as connection:
        await connection.execute(
            update(silences)
            .where(silences.c.project_id == project_id, silences.c.id == existing)
            .values(
                matchers=[matcher.model_dump() for matcher in spec.matchers],
                starts_at=spec.starts_at,
                ends_at=spec.ends_at,
                comment=spec.comment,
                created_by=spec.created_by,
            )
        )


async def export(
    engine: AsyncEngine, project_id: int, now: datetime, *, show_secrets: bool = False
) -> str:
    """The project's alerting configuration as the YAML `apply` reads."""
    project = await current(engine, project_id, now)
    documents, refs = project.current.documents, project.current.channel_names
    out: dict[str, list[dict[str, Any]]] = {}
    channel_docs = [documents["channels"][name] for name in sorted(documents["channels"])]
    out["channels"] = channel_docs if show_secrets else [masked(doc) for doc in channel_docs]
    out["slos"] = []
    for name in sorted(documents["slos"]):
        document = documents["slos"][name]
        document["alerting"] = {**document["alerting"], "channels": list(refs["slos"][name])}
        out["slos"].append(document)
    out["rules"] = []
    for name in sorted(documents["rules"]):
        document = {**documents["rules"][name], "channels": list(refs["rules"][name])}
        if name in project.current.builtin_rules:
            document = {
                "name": name,
                "builtin": True,
                **{key: document[key] for key in ("enabled", "channels", "labels", "annotations")},
            }
        out["rules"].append(document)
    out["silences"] = [
        documents["silences"][name]
        for name in sorted(documents["silences"])
        if name not in project.current.expired_silences
    ]
    header = (
        "# Alerting configuration; apply with `telemetry-collector apply -f FILE --project P`.\n"
        + (
            "# Channel URLs and header values are shown: this file holds secrets.\n"
            if show_secrets
            else "# Channel secrets are masked (***): applying keeps the stored values.\n"
        )
    )
    return header + yaml.safe_dump(out, sort_keys=False, allow_unicode=True, width=100)
