"""The Jaeger fixtures are byte for byte Jaeger's (tests/fixtures/jaeger/SOURCE.md pins them)."""

from __future__ import annotations

import hashlib
import re

from support import ROOT

FOLDER = ROOT / "tests" / "fixtures" / "jaeger"


def test_jaeger_fixtures_match_their_recorded_sha256() -> None:
    source = (FOLDER / "SOURCE.md").read_text()
    pinned = dict(
        re.findall(r"^\| ([\w.-]+\.json) \|[^|]*\|[^|]*\| ([0-9a-f]{64}) \|$", source, re.M)
    )
    assert set(pinned) == {
        "otlp2jaeger-in.json",
        "otlp2jaeger-out.json",
        "ui_01.json",
        "domain_01.json",
    }
    for name, digest in pinned.items():
        assert hashlib.sha256((FOLDER / name).read_bytes()).hexdigest() == digest, name
