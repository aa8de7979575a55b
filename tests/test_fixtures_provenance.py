"""The vendored OTLP examples are byte-for-byte the specification's (SOURCE.md pins them)."""

from __future__ import annotations

import hashlib
import re

from support import EXAMPLES


def test_examples_match_their_recorded_sha256() -> None:
    source = (EXAMPLES / "SOURCE.md").read_text()
    pinned = dict(re.findall(r"\| (\w+\.json) \|[^|]*\|[^|]*\| ([0-9a-f]{64}) \|", source))
    assert set(pinned) == {"trace.json", "metrics.json", "logs.json", "events.json"}
    for name, digest in pinned.items():
        assert hashlib.sha256((EXAMPLES / name).read_bytes()).hexdigest() == digest, name
