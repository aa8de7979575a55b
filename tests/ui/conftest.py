"""UI fixtures: one site (collector + demo data + firing rule + SLO) for the module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ui.ui_kit import Site, start_site


@pytest.fixture(scope="module")
def site(database_url: str, logs_dir: Path) -> Iterator[Site]:
    suffix = uuid.uuid4().hex[:6]
    running = start_site(database_url, logs_dir, f"ui-{suffix}", f"ui-other-{suffix}")
    yield running
    running.collector.stop()
