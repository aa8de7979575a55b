"""`telemetry-collector apply -f FILE --project P` and `export --project P`.

Output of `apply`: one line per change (`created rule "LLM error rate"`), then a summary;
with `--dry-run` the same lines say what would change. Errors go to stderr, name the
file, the item and the field, and exit with status 2; nothing is changed when the file
does not validate.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import ensure_project
from app.db.tables import projects
from app.domain.config_file import ConfigFileError, load
from app.store.config_apply import apply, export

_VERBS = {"create": "created", "update": "updated", "delete": "deleted"}
_SINGULAR = {"channels": "channel", "rules": "rule", "silences": "silence", "slos": "SLO"}


async def apply_file(
    engine: AsyncEngine, path: str, project: str, *, prune: bool, dry_run: bool
) -> int:
    source = "<stdin>" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: ASYNC230, SIM115
    except OSError as error:
        print(f"error: {source}: {error.strerror}", file=sys.stderr)
        return 2
    try:
        config = load(text, source, os.environ)
        project_id = await ensure_project(engine, project)
        changes = await apply(
            engine,
            project_id,
            config,
            prune=prune,
            dry_run=dry_run,
            now=datetime.now(UTC),
        )
    except ConfigFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.action] = counts.get(change.action, 0) + 1
        if change.action in _VERBS:
            verb = _VERBS[change.action]
            prefix = "would be " if dry_run else ""
            print(f"{prefix}{verb} {_SINGULAR[change.section]} {change.name!r}")
        elif change.action == "skip" and change.item is not None:
            print(f"skipped {_SINGULAR[change.section]} {change.name!r}: {change.item.skip}")
    summary = ", ".join(
        f"{counts.get(action, 0)} {word}"
        for action, word in (
            ("create", "to create" if dry_run else "created"),
            ("update", "to update" if dry_run else "updated"),
            ("delete", "to delete" if dry_run else "deleted"),
            ("unchanged", "unchanged"),
        )
    )
    print(f"# project {project!r}: {summary}" + (" (dry run: nothing changed)" if dry_run else ""))
    return 0


async def export_project(engine: AsyncEngine, project: str, *, show_secrets: bool) -> int:
    async with engine.connect() as connection:
        project_id = await connection.scalar(
            select(projects.c.id).where(projects.c.name == project)
        )
    if project_id is None:
        print(f"error: no project named {project!r}", file=sys.stderr)
        return 2
    sys.stdout.write(await export(engine, project_id, datetime.now(UTC), show_secrets=show_secrets))
    return 0
