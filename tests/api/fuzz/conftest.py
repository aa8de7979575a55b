"""The fuzz suite's fixtures: an authenticated client of the real server, its budgets, and
the tally printed at the end of the run.

Every fuzz test runs twice: `smoke` with a few examples in every `make test`, and `full`
(marker `fuzz`, deselected by default) with many more in `make fuzz`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api.fuzz.answers import TALLY
from hypothesis import HealthCheck, settings
from support import Collector

SMOKE_EXAMPLES = 6
FULL_EXAMPLES = 400
BUDGETS = [
    pytest.param(SMOKE_EXAMPLES, id="smoke"),
    pytest.param(FULL_EXAMPLES, id="full", marks=pytest.mark.fuzz),
]


def budget(examples: int) -> settings:
    """Hypothesis settings for one fuzz test: the smoke run is the same every time (a
    failure in `make test` is reproducible); the full run explores anew on each run."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=examples <= SMOKE_EXAMPLES,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )


@pytest.fixture(params=BUDGETS)
def examples(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture
def http(collector: Collector, key: str) -> Iterator[httpx.Client]:
    """A plain synchronous client (Hypothesis drives its examples synchronously)."""
    with httpx.Client(
        base_url=collector.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        yield client


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if sum(TALLY.by_class.values()):
        terminalreporter.write_line(TALLY.summary())
        for line in TALLY.server_errors[:20]:
            terminalreporter.write_line(f"  5xx: {line}")
