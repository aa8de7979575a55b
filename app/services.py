"""The per-process objects that requests use, made in lifespan and kept on `app.state`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import KeyStore
from app.config import Settings
from app.db.partitions import PartitionManager
from app.ingest.admission import Admission
from app.ingest.enrich import Enricher
from app.ingest.offload import Offload
from app.ingest.series import SeriesRegistry
from app.ingest.writer import GroupCommitWriter


@dataclass(slots=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    read_engine: AsyncEngine
    partitions: PartitionManager
    writer: GroupCommitWriter
    keys: KeyStore
    enricher: Enricher
    series: SeriesRegistry
    default_project_id: int
    head_revision: str
    # Ingest: the in-flight byte budget, and the threads that decode and build rows.
    admission: Admission
    offload: Offload
