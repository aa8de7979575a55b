"""Projects and API keys: creation, hashing at rest, lookup with a short cache, scopes.

A project gets its built-in alert rules when it is created (app/domain/builtin_rules.py).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import api_keys, projects
from app.store.alert_rules import ensure_builtin_rules

SCOPES = ("ingest", "read", "admin")
KEY_PREFIX = "tc_"
DEFAULT_PROJECT = "default"
_CACHE_MAX = 10000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's project and what it may do."""

    project_id: int
    project_name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        # admin implies the others: an operator key can also read and send.
        return scope in self.scopes or "admin" in self.scopes


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str
    project_id: int
    project_name: str
    scopes: tuple[str, ...]


def hash_key(key: str) -> bytes:
    # Keys carry 256 random bits, so SHA-256 needs no salt or stretching to be safe at rest.
    return hashlib.sha256(key.encode()).digest()


async def ensure_project(engine: AsyncEngine, name: str) -> int:
    async with engine.begin() as connection:
        await connection.execute(
            insert(projects).values(name=name).on_conflict_do_nothing(index_elements=["name"])
        )
        project_id = await connection.scalar(select(projects.c.id).where(projects.c.name == name))
        assert project_id is not None
        await ensure_builtin_rules(connection, [int(project_id)])
    return int(project_id)


async def create_key(
    engine: AsyncEngine, project: str, scopes: list[str], name: str = ""
) -> NewKey:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"unknown scope {unknown}; choose from {', '.join(SCOPES)}")
    project_id = await ensure_project(engine, project)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    async with engine.begin() as connection:
        await connection.execute(
            api_keys.insert().values(
                project_id=project_id,
                prefix=key[:10],
                key_hash=hash_key(key),
                scopes=sorted(set(scopes)),
                name=name,
            )
        )
    return NewKey(key, project_id, project, tuple(sorted(set(scopes))))


@dataclass(frozen=True, slots=True)
class KeyInfo:
    prefix: str
    project: str
    scopes: tuple[str, ...]
    name: str
    created_at: datetime
    revoked_at: datetime | None


async def list_keys(engine: AsyncEngine, project: str | None = None) -> list[KeyInfo]:
    """Keys as stored (never the keys themselves: only their first characters)."""
    query = (
        select(
            api_keys.c.prefix,
            projects.c.name.label("project"),
            api_keys.c.scopes,
            api_keys.c.name,
            api_keys.c.created_at,
            api_keys.c.revoked_at,
        )
        .join(projects, projects.c.id == api_keys.c.project_id)
        .order_by(projects.c.name, api_keys.c.created_at)
    )
    if project:
        query = query.where(projects.c.name == project)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [
        KeyInfo(
            row.prefix, row.project, tuple(row.scopes), row.name, row.created_at, row.revoked_at
        )
        for row in rows
    ]


async def revoke_key(engine: AsyncEngine, prefix: str) -> KeyInfo:
    """Revoke the one active key starting with `prefix`; ValueError if none or several."""
    # Stored prefixes are a key's first 10 characters; the whole key works as well.
    wanted = prefix[:10]
    matches = [
        key
        for key in await list_keys(engine)
        if key.revoked_at is None and key.prefix.startswith(wanted)
    ]
    if not matches:
        raise ValueError(f"no active key starts with {prefix!r}")
    if len(matches) > 1:
        listed = ", ".join(f"{key.prefix} ({key.project})" for key in matches)
        raise ValueError(f"{prefix!r} matches several keys: {listed}; give more characters")
    async with engine.begin() as connection:
        await connection.execute(
            update(api_keys)
            .where(api_keys.c.prefix == matches[0].prefix, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
        )
    return matches[0]


class KeyStore:
    """Resolves presented keys to principals, caching hits and misses for `ttl_s`.

    The TTL (TELEMETRY_KEY_CACHE_TTL) bounds how long a revoked key keeps working.
    """

    def __init__(self, engine: AsyncEngine, ttl_s: float) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._cache: dict[bytes, tuple[float, Principal | None]] = {}

    async def lookup(self, key: str) -> Principal | None:
        return await self.lookup_digest(hash_key(key))

    async def lookup_digest(self, digest: bytes) -> Principal | None:
        """As `lookup`, from the key's SHA-256 (what a UI session cookie carries)."""
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(api_keys.c.project_id, api_keys.c.scopes, projects.c.name)
                    .join(projects, projects.c.id == api_keys.c.project_id)
                    .where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))
                )
            ).first()
        principal = Principal(int(row.project_id), row.name, frozenset(row.scopes)) if row else None
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[digest] = (now + self._ttl_s, principal)
        return principal
